package rollout

import (
	"context"
	"fmt"
	"time"
)

// RolloutInfo is what an approver sees of a rollout on the approvals page and in
// GET /api/v1/approvals.
type RolloutInfo struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Release         string    `json:"release"`
	Severity        string    `json:"severity"`
	Emergency       bool      `json:"emergency"`
	State           string    `json:"state"`
	RequestedBy     string    `json:"requested_by"`
	RequestedAt     time.Time `json:"requested_at"`
	Risk            string    `json:"risk"`
	TestEvidence    string    `json:"test_evidence"`
	RollbackPlan    string    `json:"rollback_plan"`
	Approvals       []string  `json:"approvals"`
	ApprovalsNeeded int       `json:"approvals_needed"`
}

func rolloutInfo(r *Rollout) RolloutInfo {
	info := RolloutInfo{ID: r.ID, Name: r.Name, Emergency: r.Emergency, State: string(r.State), RequestedBy: r.RequestedBy,
		RequestedAt: r.StateAt, Risk: r.Risk, TestEvidence: r.TestEvidence, RollbackPlan: r.RollbackPlan, ApprovalsNeeded: r.ApprovalsNeeded}
	if r.Release != nil {
		info.Release, info.Severity = r.Release.Name, string(r.Release.Severity)
	}
	for _, a := range r.Approvals {
		info.Approvals = append(info.Approvals, a.By)
	}
	return info
}

// AwaitingApproval lists the rollouts waiting for approval (never nil).
func (e *Engine) AwaitingApproval(ctx context.Context) ([]RolloutInfo, error) {
	ros, err := e.Rollouts(ctx, PendingApproval)
	if err != nil {
		return []RolloutInfo{}, err
	}
	out := make([]RolloutInfo, 0, len(ros))
	for _, r := range ros {
		out = append(out, rolloutInfo(r))
	}
	return out, nil
}

// ApproveRollout approves (or rejects) rollout id as actor, after the checks of the
// approvals page: a remark, the change request's risk, test evidence and rollback plan,
// and the requester not approving their own rollout. The engine's own rules (an
// emergency needs two distinct approvers, nobody approves twice) apply as well. ctx
// carries the request's principal for the audit record.
func (e *Engine) ApproveRollout(ctx context.Context, actor string, id int64, approve bool, remark string) error {
	if remark == "" {
		return refusef(ErrInvalid, "a remark is required")
	}
	ro, err := e.Rollout(ctx, id)
	if err != nil {
		return err
	}
	if ro.RequestedBy == actor {
		hint := ""
		if approve && e.cfg.ApprovalPolicy == SelfWithReview {
			hint = " here; under self_with_review approve it with a justification (self-approve, on /reviews)"
		}
		return fmt.Errorf("%w: %s requested rollout %d and cannot approve or reject it%s", ErrSeparation, actor, id, hint)
	}
	if !approve {
		_, err = e.Reject(ctx, id, actor, remark)
		return err
	}
	if ro.Risk == "" || ro.TestEvidence == "" || ro.RollbackPlan == "" {
		return refusef(ErrState, "rollout %d cannot be approved before its risk, test evidence and rollback plan are filled in", id)
	}
	_, err = e.Approve(ctx, id, actor, remark)
	return err
}
