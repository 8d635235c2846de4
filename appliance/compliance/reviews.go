package compliance

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Review is a rollout its requester approved under the self_with_review policy, and
// the countersignature it needs from another account by DueAt.
type Review struct {
	ID              int64     `json:"id"`
	Rollout         string    `json:"rollout"`
	Emergency       bool      `json:"emergency"`
	ApprovedBy      string    `json:"approved_by"`
	ApprovedAt      time.Time `json:"approved_at"`
	DueAt           time.Time `json:"due_at"`
	CountersignedBy string    `json:"countersigned_by,omitempty"`
	CountersignedAt time.Time `json:"countersigned_at,omitzero"`
	// Overdue is set by Build: not countersigned by the report's time and past DueAt.
	Overdue bool `json:"overdue"`
}

// signedBy reports whether the review was countersigned by t.
func (v Review) signedBy(t time.Time) bool {
	return !v.CountersignedAt.IsZero() && !v.CountersignedAt.After(t)
}

// Reviews gives the approval policy in force and every self-approval (the rollout
// engine).
type Reviews interface {
	ApprovalPolicy() string
	SelfApprovals(ctx context.Context) ([]Review, error)
}

// addReviews fills the report's approval policy, the self-approvals of the period (or
// still waiting at its end) and those overdue at at, oldest due first.
func (b *Builder) addReviews(ctx context.Context, r *Report, from, at time.Time) error {
	if b.Reviews == nil {
		return nil
	}
	r.ApprovalPolicy = b.Reviews.ApprovalPolicy()
	vs, err := b.Reviews.SelfApprovals(ctx)
	if err != nil {
		return fmt.Errorf("compliance: reviews: %w", err)
	}
	for _, v := range vs {
		if v.ApprovedAt.After(at) {
			continue
		}
		open := !v.signedBy(at)
		v.Overdue = open && at.After(v.DueAt)
		if !v.ApprovedAt.Before(from) || open {
			r.SelfApprovals = append(r.SelfApprovals, v)
		}
		if v.Overdue {
			r.ReviewsOverdue = append(r.ReviewsOverdue, v)
		}
	}
	slices.SortFunc(r.ReviewsOverdue, func(a, b Review) int { return a.DueAt.Compare(b.DueAt) })
	return nil
}
