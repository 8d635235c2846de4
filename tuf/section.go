package tuf

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the tuf section of patchgate.yaml: the upstream TUF repositories the update cache mirrors. Every byte the
// cache serves is vouched for by the verified metadata of one of them.
type Section struct {
	Repositories []Repository `yaml:"repositories"`
	// Demo publishes a small signed demo repository on first start, serves it on the
	// distribution listener under /demo-upstream/ and mirrors it as one more repository
	// (configs/dev.yaml turns it on). Never for production.
	Demo Demo `yaml:"demo"`
	// Site is how the appliance keeps the repositories it publishes itself (the demo, a
	// site repository) fresh: their online roles re-signed, their expiry watched.
	Site Site `yaml:"site"`
}

// SiteName is the name the appliance's own site repository (releases made from vendor
// candidates, signed when approved) is mirrored as, once the sources section lists any.
const SiteName = "site"

// Site is the tuf.site section: the lifetimes of the online roles (timestamp and
// snapshot, whose keys the daemon holds) of the repositories the appliance publishes,
// how often the daemon re-signs them, and how early health warns of an expiry.
type Site struct {
	TimestampExpiry conf.Duration `yaml:"timestamp_expiry"`
	SnapshotExpiry  conf.Duration `yaml:"snapshot_expiry"`
	ResignEvery     conf.Duration `yaml:"resign_every"`
	WarnBefore      conf.Duration `yaml:"warn_before"`
}

// RefresherConfig is the refresher's configuration for the repository name published
// in dir.
func (s Site) RefresherConfig(name, dir string) RefresherConfig {
	return RefresherConfig{Name: name, Dir: dir, TimestampExpiry: s.TimestampExpiry.D(), SnapshotExpiry: s.SnapshotExpiry.D(),
		ResignEvery: s.ResignEvery.D(), WarnBefore: s.WarnBefore.D()}
}

func (s Site) validate(key string, ps *conf.Problems) {
	for _, f := range []struct {
		name string
		d    conf.Duration
	}{{"timestamp_expiry", s.TimestampExpiry}, {"snapshot_expiry", s.SnapshotExpiry}, {"resign_every", s.ResignEvery}, {"warn_before", s.WarnBefore}} {
		if f.d.D() < time.Minute {
			ps.Addf(key+"."+f.name, "must be at least 1m, got %s", f.d.D())
		}
	}
	if s.ResignEvery.D() >= time.Minute && 2*s.ResignEvery.D() > s.TimestampExpiry.D() {
		ps.Addf(key+".resign_every", "must be at most half of timestamp_expiry (%s), so that a missed re-sign still leaves time, got %s", s.TimestampExpiry.D(), s.ResignEvery.D())
	}
	if s.SnapshotExpiry.D() < s.TimestampExpiry.D() {
		ps.Addf(key+".snapshot_expiry", "must be at least timestamp_expiry (%s), got %s", s.TimestampExpiry.D(), s.SnapshotExpiry.D())
	}
}

// Repository is one upstream repository (tuf.repositories[]).
type Repository struct {
	// Name is the repository's name in /repos/NAME/..., metrics and logs.
	Name string `yaml:"name"`
	// MetadataURL and TargetsURL are the upstream's base URLs.
	MetadataURL string `yaml:"metadata_url"`
	TargetsURL  string `yaml:"targets_url"`
	// Root is the pinned root.json file, installed out of band. Relative paths are
	// relative to the working directory.
	Root string `yaml:"root"`
	// RefreshInterval is the time between metadata refreshes (0: 5m).
	RefreshInterval conf.Duration `yaml:"refresh_interval"`
	// UpstreamBandwidth caps this repository's target downloads (0: no cap of its own;
	// bandwidth.upstream caps all of them together).
	UpstreamBandwidth conf.Rate `yaml:"upstream_bandwidth"`
	// VendorHosts map vendor URLs onto this repository's targets, for devices that
	// fetch from the vendor's host name (rewritten to the appliance by the resolver).
	VendorHosts []VendorHost `yaml:"vendor_hosts"`
}

// VendorHost maps http(s)://HOST/PATH_PREFIX... onto the target TARGET_PREFIX... of a
// repository (tuf.repositories[].vendor_hosts[], tuf.demo.vendor_hosts[]); package
// appliance/vendorhost serves it. A target's signed custom metadata maps single URLs
// too ({"vendor_urls": ["http://HOST/PATH"]}).
type VendorHost struct {
	// Host is the vendor's DNS name (compared in conf.HostName's form).
	Host string `yaml:"host"`
	// PathPrefix is the URL path the mapping covers ("/" when left out).
	PathPrefix string `yaml:"path_prefix"`
	// TargetPrefix replaces PathPrefix to make the target path ("" when left out:
	// /x.bin under "/" is the target x.bin).
	TargetPrefix string `yaml:"target_prefix"`
}

func validateVendorHosts(key string, hosts []VendorHost, ps *conf.Problems) {
	for i, h := range hosts {
		k := fmt.Sprintf("%s.vendor_hosts[%d]", key, i)
		if _, err := conf.HostName(h.Host); err != nil {
			ps.Addf(k+".host", "must be a DNS name (no scheme, port or path): %v", err)
		}
		if h.PathPrefix != "" && (!strings.HasPrefix(h.PathPrefix, "/") || !strings.HasSuffix(h.PathPrefix, "/")) {
			ps.Addf(k+".path_prefix", "must start and end with /, got %q", h.PathPrefix)
		}
		if h.TargetPrefix != "" && (strings.HasPrefix(h.TargetPrefix, "/") || !strings.HasSuffix(h.TargetPrefix, "/")) {
			ps.Addf(k+".target_prefix", "must be a target directory ending in / and not starting with /, got %q", h.TargetPrefix)
		}
	}
}

// Demo is the newcomer's demo repository.
type Demo struct {
	Enabled bool `yaml:"enabled"`
	// Name is the repository name it is mirrored as (/repos/NAME/...).
	Name string `yaml:"name"`
	// Dir is where it is published (empty: STATE/tuf-demo).
	Dir string `yaml:"dir"`
	// VendorHosts map vendor URLs onto the demo's targets (see Repository).
	VendorHosts []VendorHost `yaml:"vendor_hosts"`
}

var repoNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Files lists the pinned root files the section names (relative to the working
// directory), for the loader to check.
func (t Section) Files(key string) []conf.FileRef {
	var out []conf.FileRef
	for i, r := range t.Repositories {
		out = append(out, conf.FileRef{Key: conf.Index(key+".repositories", i) + ".root", Path: r.Root})
	}
	return out
}

// Validate checks the tuf section.
func (t Section) Validate(key string, ps *conf.Problems) {
	t.Site.validate(key+".site", ps)
	seen := map[string]bool{}
	if t.Demo.Enabled {
		if !repoNameRE.MatchString(t.Demo.Name) {
			ps.Addf(key+".demo.name", "must be 1-63 of a-z 0-9 . _ - starting with a letter or digit, got %q", t.Demo.Name)
		}
		seen[t.Demo.Name] = true
		validateVendorHosts(key+".demo", t.Demo.VendorHosts, ps)
	}
	for i, r := range t.Repositories {
		k := fmt.Sprintf("%s.repositories[%d]", key, i)
		switch {
		case !repoNameRE.MatchString(r.Name):
			ps.Addf(k+".name", "must be 1-63 of a-z 0-9 . _ - starting with a letter or digit, got %q", r.Name)
		case seen[r.Name]:
			ps.Addf(k+".name", "repository %q listed twice (tuf.demo.name counts)", r.Name)
		}
		seen[r.Name] = true
		for field, v := range map[string]string{"metadata_url": r.MetadataURL, "targets_url": r.TargetsURL} {
			if !conf.IsHTTPURL(v) {
				ps.Addf(k+"."+field, "must be an http:// or https:// URL, got %q", v)
			}
		}
		if r.Root == "" {
			ps.Addf(k+".root", "must name the pinned root.json file")
		}
		if r.RefreshInterval != 0 && r.RefreshInterval.D() < 10*time.Second {
			ps.Addf(k+".refresh_interval", "must be at least 10s (or left out: 5m), got %s", r.RefreshInterval.D())
		}
		if r.UpstreamBandwidth < 0 {
			ps.Addf(k+".upstream_bandwidth", "must not be negative, got %s", r.UpstreamBandwidth)
		}
		validateVendorHosts(k, r.VendorHosts, ps)
	}
}

// DefaultSection is the tuf section of a config that leaves it out: no repositories.
func DefaultSection() Section {
	return Section{Demo: Demo{Name: "demo"}, Site: Site{
		TimestampExpiry: conf.Duration(24 * time.Hour), SnapshotExpiry: conf.Duration(7 * 24 * time.Hour),
		ResignEvery: conf.Duration(6 * time.Hour), WarnBefore: conf.Duration(48 * time.Hour),
	}}
}

// Names returns the names of the mirrored repositories: the demo's first when it is
// enabled, then the configured ones.
func (t Section) Names() []string {
	var names []string
	if t.Demo.Enabled {
		names = append(names, t.Demo.Name)
	}
	for _, r := range t.Repositories {
		names = append(names, r.Name)
	}
	return names
}

// MirrorConfig is the mirror's configuration for repository r: root is its pinned
// root.json, stateDir where its verified metadata is kept.
func (r Repository) MirrorConfig(root []byte, stateDir string) MirrorConfig {
	return MirrorConfig{
		Name:                   r.Name,
		MetadataURL:            r.MetadataURL,
		TargetsURL:             r.TargetsURL,
		TrustedRoot:            root,
		StateDir:               stateDir,
		RefreshInterval:        r.RefreshInterval.D(),
		UpstreamBytesPerSecond: int64(r.UpstreamBandwidth),
	}
}
