package vendorhost

import (
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the vendorhost section of patchgate.yaml: the extra listeners that answer
// vendor host names only (the distribution listener answers them too), and the bound
// of the "asked for, not available" record. The mappings themselves are per
// repository: tuf.repositories[].vendor_hosts and the targets' signed vendor_urls.
type Section struct {
	// Listen is a plain-HTTP listener for mapped vendor names only, e.g. ":80" on the
	// device segments ("": none).
	Listen string `yaml:"listen"`
	// HTTPSListen serves mapped vendor names over HTTPS with certificates of the site CA
	// (made at first start in STATE/vendorhost), e.g. ":443" ("": none).
	HTTPSListen string `yaml:"https_listen"`
	// AskedMax bounds the "asked for, not available" record (device, host, path rows);
	// the least recently asked row goes first.
	AskedMax int `yaml:"asked_max"`
	// OutcomeGrace is how long after a device fetched a target a different version read
	// from it by discovery counts as "not yet" rather than a mismatch.
	OutcomeGrace conf.Duration `yaml:"outcome_grace"`
}

// DefaultSection is the section of a config that leaves it out: no extra listeners, at
// most 1000 rows asked for, a day's grace for the read-back.
func DefaultSection() Section {
	return Section{AskedMax: 1000, OutcomeGrace: conf.Duration(24 * time.Hour)}
}

// Validate checks the section.
func (s Section) Validate(key string, ps *conf.Problems) {
	for k, v := range map[string]string{"listen": s.Listen, "https_listen": s.HTTPSListen} {
		if v == "" {
			continue
		}
		if err := conf.CheckHostPort(v); err != nil {
			ps.Addf(key+"."+k, "%v, got %q", err, v)
		}
	}
	if s.Listen != "" && s.Listen == s.HTTPSListen {
		ps.Addf(key+".https_listen", "must differ from %s.listen, got %q for both", key, s.Listen)
	}
	if s.AskedMax < 1 || s.AskedMax > 100000 {
		ps.Addf(key+".asked_max", "must be 1-100000, got %d", s.AskedMax)
	}
	if s.OutcomeGrace.D() < time.Minute {
		ps.Addf(key+".outcome_grace", "must be at least 1m, got %s", s.OutcomeGrace.D())
	}
}
