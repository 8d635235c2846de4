package rollout

import (
	"context"
	"errors"
	"testing"
)

func TestApproveRolloutGuard(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	rel := v.release(t, Release{})
	r, err := v.e.CreateRollout(ctx, "kim", pilotCore(rel.ID))
	if err != nil {
		t.Fatal(err)
	}
	must(t)(v.e.Submit(ctx, r.ID, "kim"))
	tests := []struct {
		name, actor, remark string
		want                error
	}{
		{"requester", "kim", "mine", ErrSeparation},
		{"no remark", "lee", "", ErrInvalid},
		{"unknown rollout", "lee", "ok", ErrNotFound},
		{"approver", "lee", "ok", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := r.ID
			if tt.want == ErrNotFound {
				id = 999
			}
			if err := v.e.ApproveRollout(ctx, tt.actor, id, true, tt.remark); !errors.Is(err, tt.want) {
				t.Errorf("ApproveRollout = %v, want %v", err, tt.want)
			}
		})
	}
	if got := v.rollout(t, r.ID); got.State != Approved || len(got.Approvals) != 1 || got.Approvals[0].By != "lee" {
		t.Errorf("rollout after approval: %s %+v", got.State, got.Approvals)
	}
}
