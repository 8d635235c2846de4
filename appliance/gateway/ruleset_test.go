package gateway

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// policyFile builds the policy of a config in testdata/policies.
func policyFile(t *testing.T, path string) Policy {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	p, err := PolicyFrom(cfg)
	if err != nil {
		t.Fatalf("PolicyFrom(%s): %v", path, err)
	}
	return p
}

// TestRulesetText renders each testdata/policies/NAME.yaml and compares the nft text
// with NAME.nft (rewrite with -update, and read the diff).
func TestRulesetText(t *testing.T) {
	files, _ := filepath.Glob("testdata/policies/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/policies/*.yaml")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			got := Build(policyFile(t, f)).Text()
			golden := strings.TrimSuffix(f, ".yaml") + ".nft"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Build(%s).Text() (-want +got):\n%s", f, diff)
			}
		})
	}
}
