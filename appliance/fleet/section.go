package fleet

import (
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi/clienttls"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

// Parent is the parent section of patchgate.yaml: the appliance (a child) mirrors the
// named repositories from another Patchgate (its parent) instead of from upstream.
// Every tier verifies against its own pinned roots.
//
//	parent:
//	  url: https://hq-patchgate.example:8080   # the parent's distribution listener
//	  repositories: [vendor, site]             # mirrored from URL/repos/NAME/
//	  roots: /etc/patchgate/parent-roots       # NAME.root.json for each repository
//	  enrol_token: pge1....                    # a downstream token made on the parent
//	  fingerprint: AB:CD:...                   # https: the parent's agent listener certificate
type Parent struct {
	// URL is the parent's distribution listener; empty turns the section off.
	URL string `yaml:"url"`
	// Repositories are the names mirrored from the parent; each becomes
	// tuf.repositories[] NAME with metadata at URL/repos/NAME/metadata and targets
	// at URL/repos/NAME/targets.
	Repositories []string `yaml:"repositories"`
	// Roots is the directory holding each repository's pinned root, NAME.root.json,
	// installed out of band (never fetched from the parent).
	Roots string `yaml:"roots"`
	// EnrolToken is a downstream enrolment token made on the parent (tag
	// patchgate:downstream); used once, on the first start, to get this appliance's
	// own credential (kept in STATE/fleet/credential.json).
	EnrolToken conf.Secret `yaml:"enrol_token"`
	// CheckEvery is how often the child checks in with its parent (and measures the
	// clock skew between them).
	CheckEvery conf.Duration `yaml:"check_every"`
	// MaxSkew is the clock difference to the parent health warns about.
	MaxSkew conf.Duration `yaml:"max_skew"`
	// Fingerprint is the SHA-256 fingerprint of the parent's agent listener certificate
	// (rollout.agent_tls on the parent; it logs it), for a URL with https: checked at
	// enrolment, then the certificate seen is pinned in STATE/fleet/appliance.pin.
	// Empty: CAFile (or the system's roots) vouch for it at enrolment.
	Fingerprint string `yaml:"fingerprint"`
	// CAFile is a PEM CA bundle that vouches for the parent's certificate at enrolment
	// when Fingerprint is empty.
	CAFile string `yaml:"ca_file"`
	// RefreshInterval is the metadata refresh interval of the parent's repositories
	// (0: the mirror's default).
	RefreshInterval conf.Duration `yaml:"refresh_interval"`
}

// DefaultParent is the parent section of a config that leaves it out: none.
func DefaultParent() Parent {
	return Parent{CheckEvery: conf.Duration(5 * time.Minute), MaxSkew: conf.Duration(time.Minute)}
}

// Enabled reports whether a parent is configured.
func (p Parent) Enabled() bool { return p.URL != "" }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks the parent section.
func (p Parent) Validate(key string, ps *conf.Problems) {
	if !p.Enabled() {
		if len(p.Repositories) > 0 || p.EnrolToken != "" {
			ps.Addf(key+".url", "must be set when parent.repositories or parent.enrol_token are")
		}
		return
	}
	if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		ps.Addf(key+".url", "must be the parent's distribution listener as http(s)://HOST[:PORT] without a path, got %q", p.URL)
	}
	if len(p.Repositories) == 0 {
		ps.Addf(key+".repositories", "must name at least one repository of the parent")
	}
	seen := map[string]bool{}
	for i, name := range p.Repositories {
		switch {
		case !nameRE.MatchString(name):
			ps.Addf(conf.Index(key+".repositories", i), "must be 1-63 of a-z 0-9 . _ - starting with a letter or digit, got %q", name)
		case seen[name]:
			ps.Addf(conf.Index(key+".repositories", i), "repository %q listed twice", name)
		}
		seen[name] = true
	}
	if p.Roots == "" {
		ps.Addf(key+".roots", "must name the directory with each repository's pinned NAME.root.json")
	}
	if p.CheckEvery.D() < 10*time.Second || p.CheckEvery.D() > 24*time.Hour {
		ps.Addf(key+".check_every", "must be between 10s and 24h, got %s", p.CheckEvery.D())
	}
	if p.MaxSkew.D() < time.Second {
		ps.Addf(key+".max_skew", "must be at least 1s, got %s", p.MaxSkew.D())
	}
	if p.Fingerprint != "" && clienttls.NormFingerprint(p.Fingerprint) == "" {
		ps.Addf(key+".fingerprint", "must be a SHA-256 fingerprint (64 hex digits, colons allowed), got %q", p.Fingerprint)
	}
	if (p.Fingerprint != "" || p.CAFile != "") && !p.HTTPS() {
		ps.Addf(key+".url", "must be https:// when parent.fingerprint or parent.ca_file is set (they are for the parent's agent TLS listener)")
	}
	if p.RefreshInterval != 0 && p.RefreshInterval.D() < 10*time.Second {
		ps.Addf(key+".refresh_interval", "must be at least 10s (or left out), got %s", p.RefreshInterval.D())
	}
}

// HTTPS reports whether the parent is reached over TLS (its agent listener, with
// client certificates).
func (p Parent) HTTPS() bool { return strings.HasPrefix(p.URL, "https://") }

// base is URL without a trailing slash.
func (p Parent) base() string { return strings.TrimSuffix(p.URL, "/") }

// Fill applies the shorthand: each of the parent's repositories is appended to repos
// (the tuf section's) as a mirror of the parent's /repos/NAME/, and the parent's host
// to egress (gateway.egress.repositories), so the gateway lets the appliance reach
// it. A disabled section changes nothing.
func (p Parent) Fill(repos *[]tuf.Repository, egress *[]string) {
	if !p.Enabled() {
		return
	}
	for _, name := range p.Repositories {
		*repos = append(*repos, tuf.Repository{
			Name:            name,
			MetadataURL:     p.base() + "/repos/" + name + "/metadata",
			TargetsURL:      p.base() + "/repos/" + name + "/targets",
			Root:            filepath.Join(p.Roots, name+".root.json"),
			RefreshInterval: p.RefreshInterval,
		})
	}
	if h := p.Host(); h != "" && egress != nil {
		*egress = append(*egress, h)
	}
}

// Host is the parent's host name or address (no port), "" when it has none.
func (p Parent) Host() string {
	u, err := url.Parse(p.URL)
	if err != nil {
		return ""
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// Serves reports whether repository r is one of the parent's (its URLs are under the
// parent's /repos/), so that requests for it carry the child's credential.
func (p Parent) Serves(r tuf.Repository) bool {
	return p.Enabled() && strings.HasPrefix(r.MetadataURL, p.base()+"/repos/") && strings.HasPrefix(r.TargetsURL, p.base()+"/repos/")
}
