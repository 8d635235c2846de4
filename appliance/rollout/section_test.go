package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// TestSeedRingYAML: a seeded ring's selector keys sit beside its name and order in the
// YAML and reach the engine's ring as its Selector.
func TestSeedRingYAML(t *testing.T) {
	var s Section
	src := `rings:
  - {name: pilot, order: 0, tags: [pilot], device_types: [laptop], segments: [office], assets: [a-1]}
  - {name: core, order: 1}`
	if err := yaml.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	want := []Ring{
		{Name: "pilot", Selector: Selector{Tags: []string{"pilot"}, DeviceTypes: []string{"laptop"}, Segments: []string{"office"}, Assets: []string{"a-1"}}},
		{Name: "core", Order: 1},
	}
	if diff := cmp.Diff(want, s.Config(nil).SeedRings); diff != "" {
		t.Errorf("seed rings (-want +got):\n%s", diff)
	}
}
