package config

import (
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/conf"
)

var (
	typeOfConfig      = reflect.TypeFor[Config]()
	typeOfUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

// positions maps dotted keys (segments[0].name) to the line they are on in the file.
type positions map[string]int

// lineOf returns the line of key, or of its nearest ancestor present in the file.
func (p positions) lineOf(key string) int {
	for key != "" {
		if n, ok := p[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// keyAt returns the deepest key on line n.
func (p positions) keyAt(n int) string {
	best := ""
	for k, l := range p {
		if l == n && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// walk records the position of every key under n and reports keys that t has no field for.
func walk(n *yaml.Node, t reflect.Type, key string, pos positions, ps *conf.Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(typeOfUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // yaml.v3 reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := join(key, k.Value)
			pos[child] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*ps = append(*ps, conf.Problem{Line: k.Line, Key: child, Msg: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			walk(v, ft, child, pos, ps)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			child := join(key, n.Content[i].Value)
			pos[child] = n.Content[i].Line
			walk(n.Content[i+1], t.Elem(), child, pos, ps)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			child := key + "[" + strconv.Itoa(i) + "]"
			pos[child] = v.Line
			walk(v, t.Elem(), child, pos, ps)
		}
	}
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// yamlFields maps the YAML names of t's fields (inline structs flattened) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggest names a known key that differs from name by case or underscores.
func suggest(name string, fields map[string]reflect.Type) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }
	for k := range fields {
		if norm(k) == norm(name) {
			return " (did you mean " + strconv.Quote(k) + "?)"
		}
	}
	return ""
}
