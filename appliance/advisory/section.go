package advisory

import (
	"regexp"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Feed kinds, the values of Feed.Kind.
const (
	KindKEV  = "kev"  // CISA's known_exploited_vulnerabilities.json
	KindCSAF = "csaf" // a CSAF 2.0 provider: provider-metadata.json, signed advisories
	KindOSV  = "osv"  // an OSV API (POST /v1/query per package agents report)
)

// Defaults of the section's optional keys.
const (
	DefaultInterval = 6 * time.Hour
	DefaultTimeout  = 5 * time.Minute
	DefaultMaxSize  = 64 << 20
	// DefaultMaxDocuments bounds the advisories one CSAF check fetches.
	DefaultMaxDocuments = 500
	// DefaultMaxQueries bounds the OSV package queries one check makes.
	DefaultMaxQueries = 2000
)

// Feed is one advisory feed.
type Feed struct {
	// Name names the feed in findings, the API and health problems.
	Name string `yaml:"name"`
	// Kind is kev, csaf or osv.
	Kind string `yaml:"kind"`
	// URL is the KEV JSON file, the CSAF provider-metadata.json, or the OSV API root
	// (https://api.osv.dev).
	URL string `yaml:"url"`
	// Key (inline, armored) or KeyFile pins the CSAF provider's OpenPGP key: every
	// advisory must carry a valid .asc signature by it (csaf, required).
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	// Interval is how often the feed is fetched (default the section's).
	Interval conf.Duration `yaml:"interval"`
}

// Section is the advisory section of patchgate.yaml.
type Section struct {
	// Interval is how often each feed is fetched (default 6h).
	Interval conf.Duration `yaml:"interval"`
	// Timeout bounds one fetch of one feed, every request of it included (default 5m).
	Timeout conf.Duration `yaml:"timeout"`
	// MaxSize bounds any one file read from a feed or an import (default 64MiB).
	MaxSize conf.ByteSize `yaml:"max_size"`
	// MaxDocuments bounds the CSAF advisories one check fetches (default 500).
	MaxDocuments int `yaml:"max_documents"`
	// MaxQueries bounds the OSV queries one check makes (default 2000).
	MaxQueries int `yaml:"max_queries"`
	// Feeds are fetched on their interval; none configured: import only.
	Feeds []Feed `yaml:"feeds"`
	// ImportKeyFile pins further OpenPGP keys that signed CSAF advisories may be
	// imported with offline (the csaf feeds' keys are accepted too).
	ImportKeyFile string `yaml:"import_key_file"`
}

// Defaults returns the section with every unset key at its default.
func (s Section) Defaults() Section {
	if s.Interval == 0 {
		s.Interval = conf.Duration(DefaultInterval)
	}
	if s.Timeout == 0 {
		s.Timeout = conf.Duration(DefaultTimeout)
	}
	if s.MaxSize == 0 {
		s.MaxSize = DefaultMaxSize
	}
	if s.MaxDocuments == 0 {
		s.MaxDocuments = DefaultMaxDocuments
	}
	if s.MaxQueries == 0 {
		s.MaxQueries = DefaultMaxQueries
	}
	for i := range s.Feeds {
		if s.Feeds[i].Interval == 0 {
			s.Feeds[i].Interval = s.Interval
		}
	}
	return s
}

var feedNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks the section, all problems at once.
func (s Section) Validate(key string, ps *conf.Problems) {
	if s.Interval != 0 && s.Interval.D() < time.Minute {
		ps.Addf(key+".interval", "must be at least 1m, got %s", s.Interval.D())
	}
	if s.Timeout != 0 && s.Timeout.D() < time.Second {
		ps.Addf(key+".timeout", "must be at least 1s, got %s", s.Timeout.D())
	}
	if s.MaxSize < 0 {
		ps.Addf(key+".max_size", "must not be negative, got %s", s.MaxSize)
	}
	if s.MaxDocuments < 0 {
		ps.Addf(key+".max_documents", "must not be negative, got %d", s.MaxDocuments)
	}
	if s.MaxQueries < 0 {
		ps.Addf(key+".max_queries", "must not be negative, got %d", s.MaxQueries)
	}
	seen := map[string]bool{}
	for i, f := range s.Feeds {
		k := conf.Index(key+".feeds", i)
		switch {
		case !feedNameRE.MatchString(f.Name):
			ps.Addf(k+".name", "must be 1-63 lowercase letters, digits, '.', '_' or '-', got %q", f.Name)
		case seen[f.Name]:
			ps.Addf(k+".name", "feed %q listed twice", f.Name)
		}
		seen[f.Name] = true
		if !conf.IsHTTPURL(f.URL) {
			ps.Addf(k+".url", "must be an http or https URL, got %q", f.URL)
		}
		if f.Interval != 0 && f.Interval.D() < time.Minute {
			ps.Addf(k+".interval", "must be at least 1m, got %s", f.Interval.D())
		}
		hasKey := f.Key != "" || f.KeyFile != ""
		if f.Key != "" && f.KeyFile != "" {
			ps.Addf(k+".key_file", "give key or key_file, not both")
		}
		switch f.Kind {
		case KindCSAF:
			if !hasKey {
				ps.Addf(k+".key", "kind csaf needs the provider's pinned OpenPGP key (key or key_file)")
			}
		case KindKEV, KindOSV:
			if hasKey {
				ps.Addf(k+".key", "does not apply to kind %s", f.Kind)
			}
		default:
			ps.Addf(k+".kind", "want kev, csaf or osv, got %q", f.Kind)
		}
	}
}

// Files lists the key files the section names, for the config's existence check.
func (s Section) Files(key string) []conf.FileRef {
	var out []conf.FileRef
	if s.ImportKeyFile != "" {
		out = append(out, conf.FileRef{Key: key + ".import_key_file", Path: s.ImportKeyFile, ConfigRelative: true})
	}
	for i, f := range s.Feeds {
		if f.KeyFile != "" {
			out = append(out, conf.FileRef{Key: conf.Index(key+".feeds", i) + ".key_file", Path: f.KeyFile, ConfigRelative: true})
		}
	}
	return out
}
