package rollout

import (
	"context"
	"errors"
	"testing"
)

// An outcome decided outside the engine (the vendor hosts' read-back) moves the asset's
// deployments of releases listing the target: succeeded, failed (open ones only, with
// the retry), pending (detail only, recorded once); another target changes nothing, and
// a bad state or a missing name is refused.
func TestExternalOutcome(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	r := v.pilotCoreRollout(t, Release{Version: "2.0"})
	const target = "fw/fw-2.0.bin"
	for _, tc := range []struct {
		name      string
		x         ReadBack
		wantN     int
		wantState DeploymentState
		wantErr   error
	}{
		{"bad state", ReadBack{AssetID: "p1", Repo: "demo", Target: target, State: DepSkipped}, 0, DepScheduled, ErrInvalid},
		{"no target", ReadBack{AssetID: "p1", Repo: "demo", State: DepSucceeded}, 0, DepScheduled, ErrInvalid},
		{"another target", ReadBack{AssetID: "p1", Repo: "demo", Target: "fw/other.bin", State: DepSucceeded}, 0, DepScheduled, nil},
		{"another repository", ReadBack{AssetID: "p1", Repo: "other", Target: target, State: DepSucceeded}, 0, DepScheduled, nil},
		{"pending", ReadBack{AssetID: "p1", Repo: "demo", Target: target, Detail: `version seen "n/a" does not parse`}, 1, DepScheduled, nil},
		{"pending again, same detail", ReadBack{AssetID: "p1", Repo: "demo", Target: target, Detail: `version seen "n/a" does not parse`}, 0, DepScheduled, nil},
		{"failed", ReadBack{AssetID: "p1", Repo: "demo", Target: target, State: DepFailed, Detail: `version seen "1.9"`}, 1, DepFailed, nil},
		{"failed is not failed twice", ReadBack{AssetID: "p1", Repo: "demo", Target: target, State: DepFailed, Detail: `version seen "1.8"`}, 0, DepFailed, nil},
		{"succeeded after failed", ReadBack{AssetID: "p1", Repo: "demo", Target: target, State: DepSucceeded, Detail: `read back "2.0"`}, 1, DepSucceeded, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := v.e.ExternalOutcome(ctx, "system:vendorhost", tc.x)
			if n != tc.wantN || !errors.Is(err, tc.wantErr) {
				t.Fatalf("ExternalOutcome = %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
			if d := v.deployment(t, r.ID, "p1"); d.State != tc.wantState {
				t.Fatalf("deployment %s (%q), want %s", d.State, d.Detail, tc.wantState)
			}
		})
	}
	if d := v.deployment(t, r.ID, "p1"); d.Detail != `read back "2.0"` || d.ResultAt.IsZero() {
		t.Errorf("succeeded deployment: detail %q, result at %v", d.Detail, d.ResultAt)
	}
	if d := v.deployment(t, r.ID, "p2"); d.State != DepScheduled {
		t.Errorf("p2 moved to %s by p1's read-back", d.State)
	}
	want := map[string]bool{"deployment.pending": true, "deployment.failed": true, "deployment.succeeded": true}
	for _, a := range v.sink.actions() {
		delete(want, a)
	}
	if len(want) != 0 {
		t.Errorf("events missing: %v (have %v)", want, v.sink.actions())
	}
}
