package config

import "go.yaml.in/yaml/v3"

// Redacted renders the effective config as YAML with every Secret as ********, for logs
// and the status page.
func (c *Config) Redacted() string {
	out, err := yaml.Marshal(c)
	if err != nil {
		return "config: render: " + err.Error()
	}
	return string(out)
}
