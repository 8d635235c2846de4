package auth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rollouts is the rollout engine as the approval pages use it. The engine enforces the
// state machine and separation of duties itself (the requester never approves; an
// emergency needs two distinct approvers); the guard here adds the permission check, the
// required change-request fields and a remark.
type Rollouts interface {
	PendingApproval(ctx context.Context) ([]RolloutInfo, error)
	Rollout(ctx context.Context, id int64) (RolloutInfo, error)
	Approve(ctx context.Context, id int64, by, remark string) error
	Reject(ctx context.Context, id int64, by, remark string) error
}

// RolloutInfo is what an approver sees of a rollout.
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

type rolloutsHolder struct {
	mu sync.Mutex
	r  Rollouts
}

var errNoRollouts = &httpError{http.StatusServiceUnavailable, "the rollout engine is not running"}

// SetRollouts connects the approval pages to the rollout engine (built after auth).
func (a *Authority) SetRollouts(r Rollouts) {
	a.rollouts.mu.Lock()
	a.rollouts.r = r
	a.rollouts.mu.Unlock()
}

func (a *Authority) rolloutEngine() (Rollouts, error) {
	a.rollouts.mu.Lock()
	defer a.rollouts.mu.Unlock()
	if a.rollouts.r == nil {
		return nil, errNoRollouts
	}
	return a.rollouts.r, nil
}

// ApproveRollout approves (or rejects) rollout id as p, after the checks that belong to
// the guard: a remark, the change request's risk, test evidence and rollback plan, and
// the requester not approving their own rollout.
func (a *Authority) ApproveRollout(ctx context.Context, p *Principal, id int64, approve bool, remark string) error {
	eng, err := a.rolloutEngine()
	if err != nil {
		return err
	}
	if remark == "" {
		return badRequest("a remark is required")
	}
	ro, err := eng.Rollout(ctx, id)
	if err != nil {
		return err
	}
	if ro.RequestedBy == p.User {
		return forbidden("separation of duties: %s requested rollout %d and cannot approve or reject it", p.User, id)
	}
	ctx = WithPrincipal(ctx, p) // the audit adapter reads role, method and source from it
	if !approve {
		return eng.Reject(ctx, id, p.User, remark)
	}
	if ro.Risk == "" || ro.TestEvidence == "" || ro.RollbackPlan == "" {
		return conflict("rollout %d cannot be approved before its risk, test evidence and rollback plan are filled in", id)
	}
	return eng.Approve(ctx, id, p.User, remark)
}

func (a *Authority) registerApprovals(mux *http.ServeMux) {
	mux.HandleFunc("GET /approvals", a.approvalsPage)
	mux.HandleFunc("GET /api/v1/approvals", a.listApprovals)
	mux.HandleFunc("POST /api/v1/approvals/{id}/approve", a.decideRollout(true))
	mux.HandleFunc("POST /api/v1/approvals/{id}/reject", a.decideRollout(false))
}

func (a *Authority) pending(ctx context.Context) ([]RolloutInfo, error) {
	eng, err := a.rolloutEngine()
	if err != nil {
		return nil, err
	}
	ros, err := eng.PendingApproval(ctx)
	if ros == nil {
		ros = []RolloutInfo{}
	}
	return ros, err
}

func (a *Authority) approvalsPage(w http.ResponseWriter, r *http.Request) {
	ros, err := a.pending(r.Context())
	if err != nil && !errors.Is(err, errNoRollouts) {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "approvals.html", Page{Data: ros})
}

func (a *Authority) listApprovals(w http.ResponseWriter, r *http.Request) {
	ros, err := a.pending(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ros)
}

func (a *Authority) decideRollout(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := readInput(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		id, err := pathID(r)
		if err == nil {
			err = a.ApproveRollout(r.Context(), FromContext(r.Context()), id, approve, in["remark"])
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		word := "rejected"
		if approve {
			word = "approval recorded"
		}
		done(w, r, in, "/approvals", http.StatusOK, map[string]string{"status": word, "rollout": strconv.FormatInt(id, 10)})
	}
}
