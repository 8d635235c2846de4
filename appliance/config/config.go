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

	"go.yaml.in/yaml/v3"
)

// Config is the whole appliance configuration. The zero value is not useful; start from
// Default or Load.
type Config struct {
	Log          Log        `yaml:"log"`
	State        State      `yaml:"state"`
	Shutdown     Shutdown   `yaml:"shutdown"`
	Admin        Listener   `yaml:"admin"`
	Distribution Listener   `yaml:"distribution"`
	Segments     []Segment  `yaml:"segments"`
	Auth         Auth       `yaml:"auth"`
	Audit        Audit      `yaml:"audit"`
	Resolver     Resolver   `yaml:"resolver"`
	Gateway      Gateway    `yaml:"gateway"`
	Bandwidth    Bandwidth  `yaml:"bandwidth"`
	TUF          TUF        `yaml:"tuf"`
	Cache        Cache      `yaml:"cache"`
	Inventory    Inventory  `yaml:"inventory"`
	Rollout      Rollout    `yaml:"rollout"`
	SelfUpdate   SelfUpdate `yaml:"selfupdate"`
}

// Validate checks every section and the references between them.
func (c *Config) Validate() Problems {
	var ps Problems
	c.Log.Validate("log", &ps)
	c.State.Validate("state", &ps)
	c.Shutdown.Validate("shutdown", &ps)
	c.Admin.Validate("admin", &ps)
	c.Distribution.Validate("distribution", &ps)
	validateSegments(c.Segments, "segments", &ps)
	c.validateAuth(&ps)
	c.Audit.Validate("audit", &ps)
	c.Resolver.Validate("resolver", c, &ps)
	c.Gateway.Validate("gateway", c, &ps)
	c.Bandwidth.Validate("bandwidth", c, &ps)
	c.TUF.Validate("tuf", &ps)
	c.Cache.Validate("cache", &ps)
	c.Inventory.Validate("inventory", c, &ps)
	c.Rollout.Validate("rollout", c, &ps)
	c.SelfUpdate.Validate("selfupdate", c, &ps)
	if c.Admin.Listen != "" && c.Admin.Listen == c.Distribution.Listen {
		ps.Addf("distribution.listen", "must differ from admin.listen, got %q for both", c.Distribution.Listen)
	}
	return ps
}

// Load reads, decodes strictly and validates the config file at path, on top of Default.
// A config with problems returns *Error listing all of them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(filepath.Base(path), data)
}

// Parse is Load for bytes already read; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, &Error{Problems: Problems{syntaxProblem(name, err)}}
	}
	if doc.Kind == 0 { // empty file: all defaults
		return finish(name, &cfg, nil, nil)
	}
	pos := positions{}
	var ps Problems
	walk(doc.Content[0], typeOfConfig, "", pos, &ps)
	if err := doc.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{Problems: Problems{{File: name, Msg: err.Error()}}}
		}
		for _, msg := range te.Errors {
			ps = append(ps, typeProblem(msg, pos))
		}
	}
	return finish(name, &cfg, pos, ps)
}

func finish(name string, cfg *Config, pos positions, ps Problems) (*Config, error) {
	// Validate too, but say nothing more about a key that did not decode: its value is
	// still the default and a second message about it would mislead.
	decodeProblems := slices.Clone(ps)
	for _, v := range cfg.Validate() {
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
	return nil, &Error{Problems: ps}
}

// related reports whether key is, contains or is inside a key that has a problem.
func related(key string, ps Problems) bool {
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

func syntaxProblem(name string, err error) Problem {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{File: name, Line: n, Msg: "yaml: " + m[2]}
	}
	return Problem{File: name, Msg: err.Error()}
}

func typeProblem(msg string, pos positions) Problem {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Msg: msg}
	}
	n, _ := strconv.Atoi(m[1])
	text := m[2]
	if sub := cannotRE.FindStringSubmatch(text); sub != nil {
		text = fmt.Sprintf("want %s, got %q", sub[2], sub[1])
	} else if sub := cannotKindRE.FindStringSubmatch(text); sub != nil {
		text = fmt.Sprintf("want %s, got a %s", sub[2], kindNames[sub[1]])
	}
	return Problem{Line: n, Key: pos.keyAt(n), Msg: text}
}

var (
	cannotRE     = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (.*)$")
	cannotKindRE = regexp.MustCompile(`^cannot unmarshal !!(seq|map) into (.*)$`)
	kindNames    = map[string]string{"seq": "list", "map": "mapping"}
)
