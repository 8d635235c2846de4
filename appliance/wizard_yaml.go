package appliance

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// configDoc is the config file as a YAML tree, so that the first-run wizard changes the
// keys of its steps and leaves every other key, and the comments, as they were.
type configDoc struct{ root *yaml.Node }

// parseConfigDoc reads a config file's bytes (empty: an empty mapping).
func parseConfigDoc(data []byte) (*configDoc, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("config file: the top level is not a mapping of sections")
	}
	return &configDoc{&doc}, nil
}

// lookup returns the node at path, or nil.
func (d *configDoc) lookup(path ...string) *yaml.Node {
	n := d.root.Content[0]
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// get decodes the node at path into v; a missing key leaves v as it is.
func (d *configDoc) get(v any, path ...string) error {
	n := d.lookup(path...)
	if n == nil {
		return nil
	}
	return n.Decode(v)
}

// set puts v at path, making the mappings on the way; a comment on the key stays.
func (d *configDoc) set(v any, path ...string) error {
	var val yaml.Node
	if err := val.Encode(v); err != nil {
		return fmt.Errorf("config %v: %w", path, err)
	}
	n := d.root.Content[0]
	for i, k := range path {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config %v: %s is not a mapping", path, k)
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				next = n.Content[j+1]
			}
		}
		last := i == len(path)-1
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, next)
		}
		if last {
			val.HeadComment, val.LineComment, val.FootComment = next.HeadComment, next.LineComment, next.FootComment
			*next = val
		}
		n = next
	}
	return nil
}

// bytes is the file's new text.
func (d *configDoc) bytes() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d.root); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return b.Bytes(), nil
}
