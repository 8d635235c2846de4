package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
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

func TestApprovalPolicySection(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Section)
		problem string // the key with a problem; "" for none
	}{
		{"default", func(*Section) {}, ""},
		{"self_with_review", func(s *Section) { s.ApprovalPolicy = "self_with_review" }, ""},
		{"unknown policy", func(s *Section) { s.ApprovalPolicy = "anyone" }, "rollout.approval_policy"},
		{"no review days", func(s *Section) { s.ReviewDays = 0 }, "rollout.review_days"},
		{"emergency longer than standard", func(s *Section) { s.EmergencyReviewDays = 8 }, "rollout.emergency_review_days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSection()
			tt.mod(&s)
			var ps conf.Problems
			s.Validate("rollout", segment.NewTable(nil), &ps)
			var keys []string
			for _, p := range ps {
				keys = append(keys, p.Key)
			}
			if (tt.problem == "" && len(ps) > 0) || (tt.problem != "" && (len(ps) != 1 || ps[0].Key != tt.problem)) {
				t.Errorf("problems at %v, want %q", keys, tt.problem)
			}
			if tt.problem == "" {
				c := s.Config(nil)
				if c.ApprovalPolicy != ApprovalPolicy(s.ApprovalPolicy) || c.ReviewWithin != 7*24*time.Hour || c.EmergencyReviewWithin != 2*24*time.Hour {
					t.Errorf("Config = %s %s %s", c.ApprovalPolicy, c.ReviewWithin, c.EmergencyReviewWithin)
				}
			}
		})
	}
}
