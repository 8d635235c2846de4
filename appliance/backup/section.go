package backup

import (
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/patchgate/patchgate/conf"
)

// Section is the backup section of patchgate.yaml: where and how often the appliance
// backs itself up (appliance/backup/README.md). Backups are encrypted to Recipients; the
// appliance never holds a key that can read them.
type Section struct {
	// Interval between scheduled backups; 0 (the default) means no scheduled backup
	// (patchgate backup still works when a target and recipients are set).
	Interval conf.Duration `yaml:"interval"`
	// Recipients are age public keys (age1...); every one of them can decrypt.
	Recipients []string `yaml:"recipients"`
	// Keep is how many archives each target keeps; older ones are deleted after a
	// successful backup.
	Keep int `yaml:"keep"`
	// Local is a directory target.
	Local LocalSection `yaml:"local"`
	// S3 is an S3-compatible bucket target.
	S3 S3Section `yaml:"s3"`
}

// LocalSection is a directory that receives the archives (empty: none).
type LocalSection struct {
	Dir string `yaml:"dir"`
}

// S3Section is an S3-compatible bucket (empty endpoint: none).
type S3Section struct {
	Endpoint  string      `yaml:"endpoint"` // host[:port], no scheme
	Bucket    string      `yaml:"bucket"`
	Prefix    string      `yaml:"prefix"` // key prefix, e.g. "site-a/"
	Region    string      `yaml:"region"`
	AccessKey conf.Secret `yaml:"access_key"`
	SecretKey conf.Secret `yaml:"secret_key"`
	// Insecure speaks plain HTTP; only for an endpoint on loopback.
	Insecure bool `yaml:"insecure"`
}

// DefaultSection is the backup section of a config that leaves it out: no schedule, no
// target, keep 7.
func DefaultSection() Section { return Section{Keep: 7} }

// Enabled reports whether backups can be made: recipients and at least one target.
func (s Section) Enabled() bool {
	return len(s.Recipients) > 0 && (s.Local.Dir != "" || s.S3.Endpoint != "")
}

// Validate checks the backup section.
func (s Section) Validate(key string, ps *conf.Problems) {
	if d := s.Interval.D(); d != 0 && d < time.Hour {
		ps.Addf(key+".interval", "must be 0 (no schedule) or at least 1h, got %s", d)
	}
	for i, r := range s.Recipients {
		if _, err := ParseRecipients(r); err != nil {
			ps.Addf(key+".recipients["+itoa(i)+"]", "%v", err)
		}
	}
	if s.Keep < 1 || s.Keep > 1000 {
		ps.Addf(key+".keep", "must be 1-1000, got %d", s.Keep)
	}
	if s.Local.Dir != "" && !filepath.IsAbs(s.Local.Dir) {
		ps.Addf(key+".local.dir", "must be an absolute path, got %q", s.Local.Dir)
	}
	if s3 := s.S3; s3.Endpoint != "" {
		if strings.Contains(s3.Endpoint, "://") || strings.Contains(s3.Endpoint, "/") {
			ps.Addf(key+".s3.endpoint", "must be host[:port] without scheme or path, got %q", s3.Endpoint)
		}
		if s3.Bucket == "" {
			ps.Addf(key+".s3.bucket", "must be set with s3.endpoint")
		}
		if strings.HasPrefix(s3.Prefix, "/") {
			ps.Addf(key+".s3.prefix", "must not start with /, got %q", s3.Prefix)
		}
		if s3.AccessKey == "" || s3.SecretKey == "" {
			ps.Addf(key+".s3", "access_key and secret_key must both be set")
		}
	}
	if (s.Interval.D() != 0) && !s.Enabled() {
		ps.Addf(key+".interval", "a scheduled backup needs recipients and a target (local.dir or s3.endpoint)")
	}
}

// ParseRecipients parses one age recipient (age1...) or several, one per line.
func ParseRecipients(s string) ([]age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil {
		return nil, errorf("recipient %.12q…: want an age public key (age1...): %v", s, err)
	}
	return rs, nil
}

// Config is the service's configuration for section s.
func (s Section) Config() Config {
	c := Config{Interval: s.Interval.D(), Keep: s.Keep}
	for _, r := range s.Recipients {
		rs, _ := ParseRecipients(r) // Validate has checked them
		c.Recipients = append(c.Recipients, rs...)
	}
	if s.Local.Dir != "" {
		c.Targets = append(c.Targets, LocalTarget{Dir: s.Local.Dir})
	}
	if s.S3.Endpoint != "" {
		c.Targets = append(c.Targets, &S3Target{Endpoint: s.S3.Endpoint, Bucket: s.S3.Bucket, Prefix: s.S3.Prefix,
			Region: s.S3.Region, AccessKey: s.S3.AccessKey.Value(), SecretKey: s.S3.SecretKey.Value(), Insecure: s.S3.Insecure})
	}
	return c
}
