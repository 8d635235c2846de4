package config

import (
	"path"
	"slices"
	"strings"
	"time"
)

// SelfUpdate is the appliance's own update (image/README.md, appliance/selfupdate): newer
// appliance versions are found among the verified targets of one TUF repository, staged
// in the cache, and installed into the other A/B slot when an admin says so.
type SelfUpdate struct {
	// Repository names the tuf repository (tuf.repositories[].name, or the demo's) that
	// publishes appliance versions. Empty: no self-update; the status page still shows
	// the installed versions.
	Repository string `yaml:"repository"`
	// Prefix is the target path the versions are published under (make image-publish
	// uses appliance/).
	Prefix string `yaml:"prefix"`
	// CheckInterval is how often the verified targets are looked through.
	CheckInterval Duration `yaml:"check_interval"`
	// ESP is where the EFI system partition with the boot entries is mounted.
	ESP string `yaml:"esp"`
}

// Validate checks the selfupdate section against the tuf repositories.
func (s SelfUpdate) Validate(key string, c *Config, ps *Problems) {
	if s.Repository != "" {
		var names []string
		if c.TUF.Demo.Enabled {
			names = append(names, c.TUF.Demo.Name)
		}
		for _, r := range c.TUF.Repositories {
			names = append(names, r.Name)
		}
		if !slices.Contains(names, s.Repository) {
			ps.Addf(key+".repository", "names no tuf repository, got %q (configured: %q)", s.Repository, names)
		}
	}
	if s.Prefix == "" || strings.HasPrefix(s.Prefix, "/") || !strings.HasSuffix(s.Prefix, "/") || path.Clean(s.Prefix)+"/" != s.Prefix {
		ps.Addf(key+".prefix", "must be a relative target directory ending in /, got %q", s.Prefix)
	}
	if s.CheckInterval.D() < time.Minute {
		ps.Addf(key+".check_interval", "must be at least 1m, got %s", s.CheckInterval.D())
	}
	if !strings.HasPrefix(s.ESP, "/") {
		ps.Addf(key+".esp", "must be an absolute path, got %q", s.ESP)
	}
}
