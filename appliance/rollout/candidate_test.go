package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A release made from a vendor candidate records it (and its audit event names it); a
// candidate becomes one release at most; a release entered by hand cannot claim one; the
// OnApproved hook hears of the approval once it is committed (issue 15).
func TestCandidateRelease(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	ref := &CandidateRef{ID: 7, Source: "vendor", Path: "vendor/tool-1.2.msi", URL: "http://vendor/tool-1.2.msi",
		Verification: "sha256 pinned", Size: 42, SHA256: strings.Repeat("ab", 32)}
	rel := Release{Name: "tool 1.2", Version: "1.2", Repo: "site", Targets: []string{ref.Path}, Severity: High, Candidate: ref}

	if _, err := v.e.CreateRelease(ctx, "rita", rel); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateRelease with a candidate = %v, want ErrInvalid", err)
	}
	bad := rel
	bad.Targets = []string{"other/path"}
	if _, err := v.e.CreateCandidateRelease(ctx, "rita", bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateCandidateRelease with another target = %v, want ErrInvalid", err)
	}
	got, err := v.e.CreateCandidateRelease(ctx, "rita", rel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.CreateCandidateRelease(ctx, "rita", rel); !errors.Is(err, ErrState) {
		t.Errorf("second release of candidate 7 = %v, want ErrState", err)
	}
	stored := must(t)(v.e.Release(ctx, got.ID)).(*Release)
	if stored.Candidate == nil || *stored.Candidate != *ref {
		t.Errorf("stored candidate = %+v, want %+v", stored.Candidate, ref)
	}
	var ev *Event
	for i := range v.sink.evs {
		if v.sink.evs[i].Action == "release.create" {
			ev = &v.sink.evs[i]
		}
	}
	if ev == nil || ev.Details["candidate"] != "7" || ev.Details["sha256"] != ref.SHA256 || ev.Details["source"] != "vendor" {
		t.Errorf("release.create event = %+v, want it to name candidate 7", ev)
	}

	var heard []int64
	v.e.OnApproved(func(_ context.Context, r *Rollout) { heard = append(heard, r.ID) })
	spec := pilotCore(got.ID)
	ro := must(t)(v.e.CreateRollout(ctx, "kim", spec)).(*Rollout)
	must(t)(v.e.Submit(ctx, ro.ID, "kim"))
	if len(heard) != 0 {
		t.Fatalf("hook called before approval: %v", heard)
	}
	if err := v.e.ApproveRollout(ctx, "lee", ro.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || heard[0] != ro.ID {
		t.Errorf("OnApproved heard %v, want [%d]", heard, ro.ID)
	}
}
