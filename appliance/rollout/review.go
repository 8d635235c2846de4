package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ApprovalPolicy says who may approve a rollout.
type ApprovalPolicy string

// The approval policies.
const (
	// TwoPerson: never the requester; Approvals (EmergencyApprovals) other accounts.
	TwoPerson ApprovalPolicy = "two_person"
	// SelfWithReview: as TwoPerson, and besides the requester may approve their own
	// rollout with a written justification; another account must countersign it within
	// ReviewWithin (EmergencyReviewWithin for an emergency).
	SelfWithReview ApprovalPolicy = "self_with_review"
)

// ApprovalPolicies lists the policies.
var ApprovalPolicies = []ApprovalPolicy{TwoPerson, SelfWithReview}

// Bounds of a justification and of a countersignature's remark, in characters.
const (
	MinJustification = 20
	MaxJustification = 2000
	MaxReviewRemark  = 2000
)

// Review is a self-approved rollout waiting for (or having) another account's
// countersignature.
type Review struct {
	ID              int64     `json:"id"`
	RolloutID       int64     `json:"rollout_id"`
	Rollout         string    `json:"rollout"`
	Emergency       bool      `json:"emergency"`
	ApprovedBy      string    `json:"approved_by"`
	ApprovedAt      time.Time `json:"approved_at"`
	Justification   string    `json:"justification"`
	DueAt           time.Time `json:"due_at"`
	CountersignedBy string    `json:"countersigned_by,omitempty"`
	CountersignedAt time.Time `json:"countersigned_at,omitzero"`
	Remark          string    `json:"remark,omitempty"`
	// Overdue is set when listing: not countersigned and past DueAt.
	Overdue bool `json:"overdue"`
}

// Open reports whether the review still waits for a countersignature.
func (v Review) Open() bool { return v.CountersignedAt.IsZero() }

// Policy is the approval policy in force.
func (e *Engine) Policy() ApprovalPolicy { return e.cfg.ApprovalPolicy }

// reviewWithin is how long a countersignature of a self-approval may wait.
func (e *Engine) reviewWithin(emergency bool) time.Duration {
	if emergency {
		return e.cfg.EmergencyReviewWithin
	}
	return e.cfg.ReviewWithin
}

// recordPolicy writes the approval policy in force to the audit trail when it differs
// from the one recorded last (first start, or a changed config).
func (e *Engine) recordPolicy(ctx context.Context) error {
	var last string
	err := e.db.QueryRowContext(ctx, `SELECT value FROM rollout_settings WHERE key = 'approval_policy'`).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("rollout: approval policy: %w", err)
	}
	now := string(e.cfg.ApprovalPolicy)
	if last == now {
		return nil
	}
	d := map[string]string{"policy": now, "previous": last}
	if e.cfg.ApprovalPolicy == SelfWithReview {
		d["review_within"] = e.cfg.ReviewWithin.String()
		d["emergency_review_within"] = e.cfg.EmergencyReviewWithin.String()
	}
	ev := &Event{Actor: "system", Action: "rollout.approval_policy", Object: "policy/approval", Details: d}
	return e.commit(ctx, ev, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rollout_settings (key, value) VALUES ('approval_policy', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, now)
		return err
	})
}

// SelfApprove approves rollout id for its own requester under the self_with_review
// policy: refused under two_person, for anyone but the requester, and without a
// justification (MinJustification to MaxJustification characters). The rollout is
// approved at once (an emergency too), audited as rollout.self_approve with the policy
// and the justification, and a Review is opened that another account must countersign
// by its due time.
func (e *Engine) SelfApprove(ctx context.Context, id int64, by, justification string) (*Rollout, error) {
	if e.cfg.ApprovalPolicy != SelfWithReview {
		return nil, fmt.Errorf("rollout: self-approve: %w: the approval policy is %s: a rollout needs an approver other than its requester", ErrSeparation, e.cfg.ApprovalPolicy)
	}
	justification = strings.TrimSpace(justification)
	if n := utf8.RuneCountInString(justification); n < MinJustification || n > MaxJustification {
		return nil, fmt.Errorf("rollout: self-approve: %w: justification: write why this change cannot wait for a second person (%d-%d characters, got %d)", ErrInvalid, MinJustification, MaxJustification, n)
	}
	var review Review
	r, err := e.change(ctx, id, by, "rollout.self_approve", map[string]string{"policy": string(SelfWithReview), "justification": justification},
		func(_ context.Context, r *Rollout, now time.Time) error {
			if r.State != PendingApproval {
				return r.stateErr("self-approve")
			}
			if by == "" || by != r.RequestedBy {
				return fmt.Errorf("rollout %d: self-approve: %w: only its requester %s may self-approve it; others approve", r.ID, ErrSeparation, r.RequestedBy)
			}
			if r.Risk == "" || r.TestEvidence == "" || r.RollbackPlan == "" {
				return fmt.Errorf("rollout %d: self-approve: %w: fill in its risk, test evidence and rollback plan first", r.ID, ErrState)
			}
			r.Approvals = append(r.Approvals, Approval{By: by, At: now, Remark: "self-approved: " + justification})
			r.set(Approved, now)
			review = Review{RolloutID: r.ID, Rollout: r.Name, Emergency: r.Emergency, ApprovedBy: by, ApprovedAt: now,
				Justification: justification, DueAt: now.Add(e.reviewWithin(r.Emergency))}
			return nil
		},
		func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
			res, err := tx.ExecContext(ctx, `INSERT INTO rollout_reviews (rollout_id, rollout_name, emergency, approved_by, approved_at,
				justification, due_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, review.RolloutID, review.Rollout, review.Emergency,
				review.ApprovedBy, ts(review.ApprovedAt), review.Justification, ts(review.DueAt))
			if err != nil {
				return nil, err
			}
			review.ID, err = res.LastInsertId()
			if err != nil {
				return nil, err
			}
			return []*Event{{Time: now, Actor: by, Action: "review.open", Object: "review/" + strconv.FormatInt(review.ID, 10), RolloutID: r.ID,
				Details: map[string]string{"policy": string(SelfWithReview), "due": ts(review.DueAt), "emergency": strconv.FormatBool(r.Emergency)}}}, nil
		})
	if err != nil {
		return nil, err
	}
	if fn := e.onApproved.Load(); fn != nil {
		(*fn)(ctx, r)
	}
	return r, nil
}

const reviewCols = `id, rollout_id, rollout_name, emergency, approved_by, approved_at, justification, due_at,
	countersigned_by, countersigned_at, remark`

func scanReview(sc scanner) (Review, error) {
	var v Review
	var approved, due, signed string
	err := sc.Scan(&v.ID, &v.RolloutID, &v.Rollout, &v.Emergency, &v.ApprovedBy, &approved, &v.Justification, &due,
		&v.CountersignedBy, &signed, &v.Remark)
	v.ApprovedAt, v.DueAt, v.CountersignedAt = pt(approved), pt(due), pt(signed)
	return v, err
}

// Reviews lists the self-approvals, newest first (only those waiting for a
// countersignature when open is true), each marked overdue when past its due time.
func (e *Engine) Reviews(ctx context.Context, open bool) ([]Review, error) {
	where := ``
	if open {
		where = `WHERE countersigned_at = ''`
	}
	vs, err := queryAll(ctx, e.db, scanReview, `SELECT `+reviewCols+` FROM rollout_reviews `+where+` ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("rollout: reviews: %w", err)
	}
	now := e.now()
	for i := range vs {
		vs[i].Overdue = vs[i].Open() && now.After(vs[i].DueAt)
	}
	if vs == nil {
		vs = []Review{}
	}
	return vs, nil
}

// OverdueReviews lists the self-approvals not countersigned by their due time, oldest
// due first.
func (e *Engine) OverdueReviews(ctx context.Context) ([]Review, error) {
	vs, err := e.Reviews(ctx, true)
	if err != nil {
		return nil, err
	}
	out := []Review{}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Overdue {
			out = append(out, vs[i])
		}
	}
	return out, nil
}

// Countersign records by's review of self-approval id: by must be another account than
// the one that approved it, and a remark (at most MaxReviewRemark characters) says what
// they checked. A late countersignature is accepted and recorded as late.
func (e *Engine) Countersign(ctx context.Context, id int64, by, remark string) (Review, error) {
	remark = strings.TrimSpace(remark)
	if remark == "" || utf8.RuneCountInString(remark) > MaxReviewRemark {
		return Review{}, refusef(ErrInvalid, "remark: say what you reviewed (1-%d characters)", MaxReviewRemark)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, err := scanReview(e.db.QueryRowContext(ctx, `SELECT `+reviewCols+` FROM rollout_reviews WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Review{}, fmt.Errorf("rollout: countersign: %w: no review %d", ErrNotFound, id)
	}
	if err != nil {
		return Review{}, fmt.Errorf("rollout: countersign: %w", err)
	}
	switch {
	case !v.Open():
		return v, refusef(ErrState, "review %d was countersigned by %s already", id, v.CountersignedBy)
	case by == "" || by == v.ApprovedBy:
		return v, fmt.Errorf("rollout: countersign: %w: %s self-approved rollout %d; another account must countersign it", ErrSeparation, v.ApprovedBy, v.RolloutID)
	}
	now := e.now()
	late := now.After(v.DueAt)
	v.CountersignedBy, v.CountersignedAt, v.Remark = by, now, remark
	ev := &Event{Time: now, Actor: by, Action: "review.countersign", Object: "review/" + strconv.FormatInt(id, 10), RolloutID: v.RolloutID,
		Details: map[string]string{"remark": remark, "approved_by": v.ApprovedBy, "due": ts(v.DueAt), "late": strconv.FormatBool(late)}}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE rollout_reviews SET countersigned_by = ?, countersigned_at = ?, remark = ? WHERE id = ?`,
			by, ts(now), remark, id)
		return err
	})
	if err != nil {
		return Review{}, fmt.Errorf("rollout: countersign review %d: %w", id, err)
	}
	return v, nil
}
