package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/backup"
	"github.com/patchgate/patchgate/appliance/fleet"
	"github.com/patchgate/patchgate/appliance/forward"
	"github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

// Config is the whole appliance configuration: the root's own sections (log, state,
// shutdown, the two listeners) and each subsystem's section, declared with its defaults
// and validation in the subsystem's package. The zero value is not useful; start from
// Default or Load.
type Config struct {
	Site         Site               `yaml:"site"`
	Log          Log                `yaml:"log"`
	State        State              `yaml:"state"`
	Shutdown     Shutdown           `yaml:"shutdown"`
	Admin        Listener           `yaml:"admin"`
	Distribution Listener           `yaml:"distribution"`
	Segments     segment.Section    `yaml:"segments"`
	Auth         auth.Section       `yaml:"auth"`
	Audit        audit.Section      `yaml:"audit"`
	Resolver     resolver.Section   `yaml:"resolver"`
	Gateway      gateway.Section    `yaml:"gateway"`
	Bandwidth    cache.Bandwidth    `yaml:"bandwidth"`
	TUF          tuf.Section        `yaml:"tuf"`
	Cache        cache.Section      `yaml:"cache"`
	Inventory    inventory.Section  `yaml:"inventory"`
	Rollout      rollout.Section    `yaml:"rollout"`
	SelfUpdate   selfupdate.Section `yaml:"selfupdate"`
	Sources      supply.Section     `yaml:"sources"`
	Backup       backup.Section     `yaml:"backup"`
	VendorHost   vendorhost.Section `yaml:"vendorhost"`
	Notify       notify.Section     `yaml:"notify"`
	SIEM         forward.Section    `yaml:"siem"`
	Parent       fleet.Parent       `yaml:"parent"` // fills tuf.repositories and gateway.egress.repositories (FillParent)
	Advisory     advisory.Section   `yaml:"advisory"`
}

// Default returns the configuration used for every key a file leaves out: the root's
// own defaults here, each subsystem's from its DefaultSection. configs/patchgate.yaml
// documents them.
func Default() Config {
	return Config{
		Log:          Log{Level: "info"},
		State:        State{Dir: "/var/lib/patchgate"},
		Shutdown:     Shutdown{Timeout: conf.Duration(15 * time.Second)},
		Admin:        Listener{Listen: "127.0.0.1:9080"},
		Distribution: Listener{Listen: ":8080"},
		Auth:         auth.DefaultSection(),
		Audit:        audit.DefaultSection(),
		Resolver:     resolver.DefaultSection(),
		Gateway:      gateway.DefaultSection(),
		Bandwidth:    cache.DefaultBandwidth(),
		TUF:          tuf.DefaultSection(),
		Cache:        cache.DefaultSection(),
		Inventory:    inventory.DefaultSection(),
		Rollout:      rollout.DefaultSection(),
		SelfUpdate:   selfupdate.DefaultSection(),
		Backup:       backup.DefaultSection(),
		VendorHost:   vendorhost.DefaultSection(),
		Notify:       notify.DefaultSection(),
		SIEM:         forward.DefaultSection(),
		Parent:       fleet.DefaultParent(),
	}
}

// Validate checks every section and the references between them, each section given
// what it refers to outside itself.
func (c *Config) Validate() conf.Problems {
	var ps conf.Problems
	segs := c.SegmentTable()
	c.Site.Validate("site", &ps)
	c.Log.Validate("log", &ps)
	c.State.Validate("state", &ps)
	c.Shutdown.Validate("shutdown", &ps)
	c.Admin.Validate("admin", &ps)
	c.Distribution.Validate("distribution", &ps)
	c.Segments.Validate("segments", &ps)
	c.Auth.Validate("auth", c.Admin.Listen, &ps)
	c.Audit.Validate("audit", &ps)
	c.Resolver.Validate("resolver", segs, &ps)
	c.Gateway.Validate("gateway", c.GatewayRefs(), &ps)
	c.Bandwidth.Validate("bandwidth", segmentNames(c.Segments), &ps)
	c.TUF.Validate("tuf", &ps)
	c.Cache.Validate("cache", &ps)
	c.Inventory.Validate("inventory", segs, &ps)
	c.Rollout.Validate("rollout", segs, &ps)
	c.SelfUpdate.Validate("selfupdate", c.TUF.Names(), &ps)
	c.Sources.Validate("sources", &ps)
	c.Backup.Validate("backup", &ps)
	c.VendorHost.Validate("vendorhost", &ps)
	c.Notify.Validate("notify", &ps)
	c.SIEM.Validate("siem", &ps)
	c.Parent.Validate("parent", &ps)
	c.Advisory.Validate("advisory", &ps)
	if len(c.Sources) > 0 && slices.Contains(c.TUF.Names(), tuf.SiteName) {
		ps.Addf("tuf", "repository name %q is the site repository's once sources are configured: rename that repository", tuf.SiteName)
	}
	if c.Admin.Listen != "" && c.Admin.Listen == c.Distribution.Listen {
		ps.Addf("distribution.listen", "must differ from admin.listen, got %q for both", c.Distribution.Listen)
	}
	return ps
}

// Files lists every file the config names, each at its key, from the sections' Files.
func (c *Config) Files() []conf.FileRef {
	var out []conf.FileRef
	out = append(out, c.Auth.Files("auth")...)
	out = append(out, c.Resolver.Files("resolver")...)
	out = append(out, c.TUF.Files("tuf")...)
	out = append(out, c.Inventory.Files("inventory")...)
	out = append(out, c.Advisory.Files("advisory")...)
	return out
}

// FillParent applies the parent shorthand (Load and Parse do; call it once after
// setting Parent by hand): the parent's repositories become tuf
// repositories (mirrors of its /repos/NAME/) and, with the gateway on, its host an
// egress destination.
func (c *Config) FillParent() {
	var egress *[]string
	if c.Gateway.Enabled {
		egress = &c.Gateway.Egress.Repositories
	}
	c.Parent.Fill(&c.TUF.Repositories, egress)
}

// SegmentTable builds the table of the configured segments, which the wiring hands to
// every subsystem that looks clients up by segment.
func (c *Config) SegmentTable() *segment.Table { return segment.NewTable(c.Segments) }

// GatewayRefs are what the gateway section refers to: the segments and the resolver's
// upstreams.
func (c *Config) GatewayRefs() gateway.Refs {
	return gateway.Refs{Segments: c.SegmentTable(), Upstreams: c.Resolver.Upstreams}
}

func segmentNames(segs segment.Section) []string {
	names := make([]string, len(segs))
	for i, s := range segs {
		names[i] = s.Name
	}
	return names
}

// Load reads, decodes strictly and validates the config file at path, on top of Default,
// and checks that every file it names exists (allowlists and rules relative to path's
// directory). A config with problems returns *conf.Error listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(filepath.Base(path), data, filepath.Dir(path))
}

// Parse is Load for bytes already read, without the file checks; name is used in
// messages.
func Parse(name string, data []byte) (*Config, error) { return parse(name, data, "") }

// parse decodes and validates data; with a configDir it also checks the files the
// config names (relative ones against configDir where the key says so).
func parse(name string, data []byte, configDir string) (*Config, error) {
	cfg := Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, &conf.Error{Problems: conf.Problems{syntaxProblem(name, err)}}
	}
	if doc.Kind == 0 { // empty file: all defaults
		return finish(name, &cfg, nil, nil, configDir)
	}
	pos := positions{}
	var ps conf.Problems
	walk(doc.Content[0], typeOfConfig, "", pos, &ps)
	if err := doc.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &conf.Error{Problems: conf.Problems{{File: name, Msg: err.Error()}}}
		}
		for _, msg := range te.Errors {
			ps = append(ps, typeProblem(msg, pos))
		}
	}
	return finish(name, &cfg, pos, ps, configDir)
}

func finish(name string, cfg *Config, pos positions, ps conf.Problems, configDir string) (*Config, error) {
	// Validate too, but say nothing more about a key that did not decode: its value is
	// still the default and a second message about it would mislead. The same for the
	// files: a key with a problem already is not looked up.
	decodeProblems := slices.Clone(ps)
	cfg.FillParent()
	checks := cfg.Validate()
	if configDir != "" {
		var files conf.Problems
		conf.CheckFiles(cfg.Files(), configDir, &files)
		for _, f := range files {
			if !related(f.Key, checks) {
				checks = append(checks, f)
			}
		}
	}
	for _, v := range checks {
		if !related(v.Key, decodeProblems) {
			ps = append(ps, v)
		}
	}
	if len(ps) == 0 {
		return cfg, nil
	}
	for i := range ps {
		ps[i].File = name
		if ps[i].Line == 0 {
			ps[i].Line = pos.lineOf(ps[i].Key)
		}
	}
	ps.Sort()
	return nil, &conf.Error{Problems: ps}
}

// related reports whether key is, contains or is inside a key that has a problem.
func related(key string, ps conf.Problems) bool {
	within := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
	}
	for _, p := range ps {
		if p.Key != "" && (within(key, p.Key) || within(p.Key, key)) {
			return true
		}
	}
	return false
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(name string, err error) conf.Problem {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return conf.Problem{File: name, Line: n, Msg: "yaml: " + m[2]}
	}
	return conf.Problem{File: name, Msg: err.Error()}
}

func typeProblem(msg string, pos positions) conf.Problem {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return conf.Problem{Msg: msg}
	}
	n, _ := strconv.Atoi(m[1])
	text := m[2]
	if sub := cannotRE.FindStringSubmatch(text); sub != nil {
		text = fmt.Sprintf("want %s, got %q", sub[2], sub[1])
	} else if sub := cannotKindRE.FindStringSubmatch(text); sub != nil {
		text = fmt.Sprintf("want %s, got a %s", sub[2], kindNames[sub[1]])
	}
	return conf.Problem{Line: n, Key: pos.keyAt(n), Msg: text}
}

var (
	cannotRE     = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (.*)$")
	cannotKindRE = regexp.MustCompile(`^cannot unmarshal !!(seq|map) into (.*)$`)
	kindNames    = map[string]string{"seq": "list", "map": "mapping"}
)
