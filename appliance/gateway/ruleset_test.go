package gateway

import (
	"flag"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/goldentest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// policyFile builds the policy of a config in testdata/policies: its segments,
// resolver upstreams and gateway sections, on top of their defaults, validated.
func policyFile(t *testing.T, path string) Policy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := struct {
		Segments segment.Section `yaml:"segments"`
		Resolver struct {
			Upstreams []resolver.Upstream `yaml:"upstreams"`
		} `yaml:"resolver"`
		Gateway Section `yaml:"gateway"`
	}{Gateway: DefaultSection()}
	cfg.Resolver.Upstreams = resolver.DefaultSection().Upstreams
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	refs := Refs{Segments: segment.NewTable(cfg.Segments), Upstreams: cfg.Resolver.Upstreams}
	var ps conf.Problems
	cfg.Segments.Validate("segments", &ps)
	cfg.Gateway.Validate("gateway", refs, &ps)
	if len(ps) > 0 {
		t.Fatalf("load %s: %v", path, (&conf.Error{Problems: ps}).Error())
	}
	p, err := PolicyFrom(cfg.Gateway, refs)
	if err != nil {
		t.Fatalf("PolicyFrom(%s): %v", path, err)
	}
	return p
}

// TestRulesetText renders each testdata/policies/NAME.yaml and compares the nft text
// with NAME.nft (rewrite with -update, and read the diff).
func TestRulesetText(t *testing.T) {
	goldentest.Each(t, "testdata/policies/*.yaml", ".nft", *update, func(t *testing.T, f string) []byte {
		return []byte(Build(policyFile(t, f)).Text())
	})
}
