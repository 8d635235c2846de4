package appliance

import (
	"context"
	"strconv"

	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// complianceReviews gives the compliance report the approval policy in force and the
// rollout engine's self-approvals (rollout.approval_policy self_with_review).
type complianceReviews struct{ e *rollout.Engine }

func (c complianceReviews) ApprovalPolicy() string { return string(c.e.Policy()) }

func (c complianceReviews) SelfApprovals(ctx context.Context) ([]compliance.Review, error) {
	vs, err := c.e.Reviews(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Review, 0, len(vs))
	for _, v := range vs {
		out = append(out, compliance.Review{ID: v.ID, Rollout: "#" + strconv.FormatInt(v.RolloutID, 10) + " " + v.Rollout, Emergency: v.Emergency,
			ApprovedBy: v.ApprovedBy, ApprovedAt: v.ApprovedAt, DueAt: v.DueAt, CountersignedBy: v.CountersignedBy, CountersignedAt: v.CountersignedAt})
	}
	return out, nil
}
