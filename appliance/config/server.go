package config

import (
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/patchgate/patchgate/conf"
)

// Log sets the daemon's logging. Logs are JSON on stderr, which journald keeps.
type Log struct {
	Level string `yaml:"level"` // debug, info, warn or error
}

// SlogLevel returns the level as a slog.Level; Validate has checked it.
func (l Log) SlogLevel() slog.Level {
	var v slog.Level
	_ = v.UnmarshalText([]byte(l.Level))
	return v
}

// Validate checks the log section.
func (l Log) Validate(key string, ps *conf.Problems) {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		ps.Addf(key+".level", "must be one of debug, info, warn, error, got %q", l.Level)
	}
}

// Site names the site this appliance serves. When set, every metric on /metrics carries
// it as the constant label site=<Site>, so one Prometheus (or Thanos/Mimir through
// federation or remote write) holds many sites apart; empty adds no label.
type Site string

var siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks the site key.
func (s Site) Validate(key string, ps *conf.Problems) {
	if s != "" && !siteRE.MatchString(string(s)) {
		ps.Addf(key, "must be 1-63 of a-z 0-9 . _ - starting with a letter or digit (it is a metric label), got %q", string(s))
	}
}

// State is where the appliance keeps everything it must remember: the database, the
// verified TUF metadata, the cache objects and the audit trail.
type State struct {
	Dir string `yaml:"dir"`
}

// Path returns a path inside the state directory.
func (s State) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

// Validate checks the state section.
func (s State) Validate(key string, ps *conf.Problems) {
	if s.Dir == "" {
		ps.Addf(key+".dir", "must be set")
	}
}

// Shutdown bounds how long a stop may take.
type Shutdown struct {
	Timeout conf.Duration `yaml:"timeout"`
}

// Validate checks the shutdown section.
func (s Shutdown) Validate(key string, ps *conf.Problems) {
	if s.Timeout.D() <= 0 || s.Timeout.D() > 5*60*1e9 {
		ps.Addf(key+".timeout", "must be between 1s and 5m, got %s", s.Timeout.D())
	}
}

// Listener is one HTTP surface. Under systemd socket activation a passed socket whose
// FileDescriptorName equals the listener's name (admin, distribution) is used instead of
// Listen.
type Listener struct {
	Listen string `yaml:"listen"` // host:port
}

// Validate checks a listener section.
func (l Listener) Validate(key string, ps *conf.Problems) {
	if err := conf.CheckHostPort(l.Listen); err != nil {
		ps.Addf(key+".listen", "%v, got %q", err, l.Listen)
	}
}

// AuditDir is the audit trail's directory: audit.dir, or STATE/audit.
func (c *Config) AuditDir() string { return c.Audit.Path(c.State.Path("audit")) }
