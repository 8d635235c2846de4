package fingerprint

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/netscan"
)

// Type is a device type.
type Type string

// Device types, from most to least specific where they overlap.
const (
	TypeLabelPrinter   Type = "label_printer"
	TypePrinter        Type = "printer"
	TypeScanner        Type = "scanner" // barcode or handheld scanner
	TypeMobileHandheld Type = "mobile_handheld"
	TypePharmacy       Type = "pharmacy_automation" // dispensing robot or cabinet
	TypePOS            Type = "pos_terminal"
	TypeWorkstation    Type = "workstation"
	TypeServer         Type = "server"
	TypeNetwork        Type = "network_device"
	TypeCamera         Type = "camera"
	TypeUnknown        Type = "unknown"
)

// Types lists every device type in a stable order.
var Types = []Type{TypeLabelPrinter, TypePrinter, TypeScanner, TypeMobileHandheld, TypePharmacy,
	TypePOS, TypeWorkstation, TypeServer, TypeNetwork, TypeCamera, TypeUnknown}

func validType(t Type) bool {
	for _, v := range Types {
		if v == t {
			return true
		}
	}
	return false
}

// Attribute names a rule may set.
const (
	AttrVendor   = "vendor"
	AttrModel    = "model"
	AttrFirmware = "firmware"
	AttrOS       = "os"
)

// Rules is a parsed rules file. It is immutable and safe for concurrent use.
type Rules struct {
	rules []rule
}

type rule struct {
	name       string
	line       int
	typ        Type
	confidence float64
	when       []cond
	unless     []cond
	set        map[string]setter
}

type cond struct {
	key   netscan.Key
	test  string // equals, prefix, contains, regex, present
	value string
	re    *regexp.Regexp
}

type setter struct {
	literal string
	from    netscan.Key
	re      *regexp.Regexp
	format  string // with $1.. from the regex groups; default "$1" or the whole value
}

// Len is the number of rules.
func (r *Rules) Len() int { return len(r.rules) }

// With returns the rules of r followed by those of more (a site's own file after
// the built-in rules). Rule names must stay unique across them.
func (r *Rules) With(more ...*Rules) (*Rules, error) {
	out := &Rules{rules: append([]rule(nil), r.rules...)}
	names := map[string]bool{}
	for _, x := range out.rules {
		names[x.name] = true
	}
	for _, m := range more {
		for _, x := range m.rules {
			if names[x.name] {
				return nil, fmt.Errorf("fingerprint: rule %q defined twice", x.name)
			}
			names[x.name] = true
			out.rules = append(out.rules, x)
		}
	}
	return out, nil
}

//go:embed rules.yaml
var defaultRules []byte

// DefaultRules returns the project's embedded rules.
func DefaultRules() *Rules {
	r, err := ParseRules("rules.yaml", bytes.NewReader(defaultRules))
	if err != nil {
		panic(err) // the embedded file is tested; failing here is a build defect
	}
	return r
}

// The YAML shape of a rules file.
type fileRules struct {
	Rules []yaml.Node `yaml:"rules"`
}

type fileRule struct {
	Name       string               `yaml:"name"`
	Type       string               `yaml:"type"`
	Confidence float64              `yaml:"confidence"`
	When       map[string]fileCond  `yaml:"when"`
	Unless     map[string]fileCond  `yaml:"unless"`
	Set        map[string]yaml.Node `yaml:"set"`
}

type fileCond struct {
	Equals   *string `yaml:"equals"`
	Prefix   *string `yaml:"prefix"`
	Contains *string `yaml:"contains"`
	Regex    *string `yaml:"regex"`
	Present  *bool   `yaml:"present"`
}

type fileSet struct {
	From   string `yaml:"from"`
	Regex  string `yaml:"regex"`
	Format string `yaml:"format"`
}

// ParseRules reads a rules file (see rules.yaml for the format). Every
// problem is reported with name:line, all at once.
func ParseRules(name string, r io.Reader) (*Rules, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("fingerprint: read %s: %w", name, err)
	}
	var f fileRules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fingerprint: %s: %w", name, err)
	}
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	out := &Rules{}
	names := map[string]int{}
	for _, node := range f.Rules {
		var fr fileRule
		if bad := unknownKeys(&node, "name", "type", "confidence", "when", "unless", "set"); bad != nil {
			fail(bad.Line, "unknown field %q", bad.Value)
			continue
		}
		if err := node.Decode(&fr); err != nil {
			fail(node.Line, "%v", err)
			continue
		}
		ru := rule{name: fr.Name, line: node.Line, typ: Type(fr.Type), confidence: fr.Confidence, set: map[string]setter{}}
		switch {
		case fr.Name == "":
			fail(node.Line, "rule without a name")
		case names[fr.Name] != 0:
			fail(node.Line, "rule %q: name already used at line %d", fr.Name, names[fr.Name])
		}
		names[fr.Name] = node.Line
		if fr.Type != "" && !validType(ru.typ) {
			fail(node.Line, "rule %q: unknown type %q", fr.Name, fr.Type)
		}
		if fr.Confidence <= 0 || fr.Confidence > 1 {
			fail(node.Line, "rule %q: confidence must be in (0, 1], got %v", fr.Name, fr.Confidence)
		}
		if len(fr.When) == 0 {
			fail(node.Line, "rule %q: no when conditions", fr.Name)
		}
		if fr.Type == "" && len(fr.Set) == 0 {
			fail(node.Line, "rule %q: sets neither a type nor an attribute", fr.Name)
		}
		for _, part := range []struct {
			m   map[string]fileCond
			dst *[]cond
		}{{fr.When, &ru.when}, {fr.Unless, &ru.unless}} {
			for _, k := range sortedKeys(part.m) {
				c, err := makeCond(netscan.Key(k), part.m[k])
				if err != nil {
					fail(node.Line, "rule %q: %s: %v", fr.Name, k, err)
					continue
				}
				*part.dst = append(*part.dst, c)
			}
		}
		for _, attr := range sortedKeys(fr.Set) {
			v := fr.Set[attr]
			switch attr {
			case AttrVendor, AttrModel, AttrFirmware, AttrOS:
			default:
				fail(v.Line, "rule %q: cannot set %q (vendor, model, firmware, os)", fr.Name, attr)
				continue
			}
			s, err := makeSetter(&v)
			if err != nil {
				fail(v.Line, "rule %q: set %s: %v", fr.Name, attr, err)
				continue
			}
			ru.set[attr] = s
		}
		out.rules = append(out.rules, ru)
	}
	if len(f.Rules) == 0 {
		errs = append(errs, fmt.Errorf("%s: no rules", name))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fingerprint: %w", errors.Join(errs...))
	}
	return out, nil
}

// unknownKeys returns the first key of mapping n not in allowed (nil if
// none, or if n is no mapping: Decode reports that).
func unknownKeys(n *yaml.Node, allowed ...string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || k.Value == a
		}
		if !ok {
			return k
		}
	}
	return nil
}

func makeCond(k netscan.Key, fc fileCond) (cond, error) {
	c := cond{key: k}
	n := 0
	if fc.Equals != nil {
		c.test, c.value, n = "equals", *fc.Equals, n+1
	}
	if fc.Prefix != nil {
		c.test, c.value, n = "prefix", strings.ToLower(*fc.Prefix), n+1
	}
	if fc.Contains != nil {
		c.test, c.value, n = "contains", strings.ToLower(*fc.Contains), n+1
	}
	if fc.Regex != nil {
		re, err := regexp.Compile("(?i)" + *fc.Regex)
		if err != nil {
			return c, err
		}
		c.test, c.re, n = "regex", re, n+1
	}
	if fc.Present != nil {
		if !*fc.Present {
			return c, errors.New("present: false is written as an unless condition")
		}
		c.test, n = "present", n+1
	}
	if n != 1 {
		return c, fmt.Errorf("want exactly one of equals, prefix, contains, regex, present; got %d", n)
	}
	return c, nil
}

func makeSetter(v *yaml.Node) (setter, error) {
	if v.Kind == yaml.ScalarNode {
		if v.Value == "" {
			return setter{}, errors.New("empty value")
		}
		return setter{literal: v.Value}, nil
	}
	var fs fileSet
	if err := v.Decode(&fs); err != nil {
		return setter{}, err
	}
	if fs.From == "" {
		return setter{}, errors.New("from: missing")
	}
	s := setter{from: netscan.Key(fs.From), format: fs.Format}
	if fs.Regex != "" {
		re, err := regexp.Compile("(?i)" + fs.Regex)
		if err != nil {
			return setter{}, err
		}
		s.re = re
		if s.format == "" && re.NumSubexp() > 0 {
			s.format = "$1"
		}
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	// Small maps; insertion sort keeps this dependency-free and stable.
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// match returns the facts satisfying c (nil if none).
func (c cond) match(facts []netscan.Fact) []netscan.Fact {
	var hit []netscan.Fact
	for _, f := range facts {
		if f.Key != c.key {
			continue
		}
		v := f.Value
		ok := false
		switch c.test {
		case "equals":
			ok = strings.EqualFold(v, c.value)
		case "prefix":
			ok = strings.HasPrefix(strings.ToLower(v), c.value)
		case "contains":
			ok = strings.Contains(strings.ToLower(v), c.value)
		case "regex":
			ok = c.re.MatchString(v)
		case "present":
			ok = true
		}
		if ok {
			hit = append(hit, f)
		}
	}
	return hit
}

// value computes what a setter sets, given the facts; "" when it cannot.
func (s setter) value(facts []netscan.Fact) (string, []netscan.Fact) {
	if s.from == "" {
		return s.literal, nil
	}
	for _, f := range facts {
		if f.Key != s.from {
			continue
		}
		if s.re == nil {
			return f.Value, []netscan.Fact{f}
		}
		m := s.re.FindStringSubmatchIndex(f.Value)
		if m == nil {
			continue
		}
		format := s.format
		if format == "" {
			format = "$0"
		}
		out := string(s.re.ExpandString(nil, format, f.Value, m))
		if out = netscan.CleanValue(out); out != "" {
			return out, []netscan.Fact{f}
		}
	}
	return "", nil
}
