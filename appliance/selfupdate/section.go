package selfupdate

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the selfupdate section of patchgate.yaml: the appliance's own update (image/README.md, appliance/selfupdate): newer
// appliance versions are found among the verified targets of one TUF repository, staged
// in the cache, and installed into the other A/B slot when an admin says so.
type Section struct {
	// Repository names the tuf repository (tuf.repositories[].name, or the demo's) that
	// publishes appliance versions. Empty: no self-update; the status page still shows
	// the installed versions.
	Repository string `yaml:"repository"`
	// conf.Prefix is the target path the versions are published under (make image-publish
	// uses appliance/).
	Prefix string `yaml:"prefix"`
	// CheckInterval is how often the verified targets are looked through.
	CheckInterval conf.Duration `yaml:"check_interval"`
	// ESP is where the EFI system partition with the boot entries is mounted.
	ESP string `yaml:"esp"`
}

// Validate checks the selfupdate section against names, the mirrored tuf repositories.
func (s Section) Validate(key string, names []string, ps *conf.Problems) {
	if s.Repository != "" {
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

// DefaultSection is the selfupdate section of a config that leaves it out.
func DefaultSection() Section {
	return Section{Prefix: "appliance/", CheckInterval: conf.Duration(time.Hour), ESP: "/efi"}
}

// Config is the service's configuration for section s: dir is the request directory
// (STATE/selfupdate), running the running version.
func (s Section) Config(dir, running string) Config {
	return Config{Repo: s.Repository, Prefix: s.Prefix, Interval: s.CheckInterval.D(), ESP: s.ESP, Dir: dir, Running: running}
}
