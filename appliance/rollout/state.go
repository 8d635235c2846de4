package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is a rollout's state:
//
//	draft → pending_approval → approved → scheduled → running ⇄ paused → completed
//	pending_approval → draft (rejected)
//	draft, pending_approval, approved, scheduled → cancelled
//	scheduled, running, paused → halted
type State string

// Rollout states.
const (
	Draft           State = "draft"
	PendingApproval State = "pending_approval"
	Approved        State = "approved"
	Scheduled       State = "scheduled"
	Running         State = "running"
	Paused          State = "paused"
	Completed       State = "completed"
	Halted          State = "halted"
	Cancelled       State = "cancelled"
)

// States lists every rollout state in lifecycle order.
var States = []State{Draft, PendingApproval, Approved, Scheduled, Running, Paused, Completed, Halted, Cancelled}

// Final reports whether nothing can happen to a rollout in state s any more.
func (s State) Final() bool { return s == Completed || s == Halted || s == Cancelled }

// Released reports whether a rollout in state s has been approved and not stopped: its
// targets are known to the gate and pinned in the cache.
func (s State) Released() bool {
	return s == Approved || s == Scheduled || s == Running || s == Paused || s == Completed
}

// Rollout moves one release through ordered ring stages.
type Rollout struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	ReleaseID int64    `json:"release_id"`
	Release   *Release `json:"release,omitempty"`
	State     State    `json:"state"`
	// Emergency rollouts (of a known-exploited or critical release) skip maintenance
	// windows once approved, and need more approvers.
	Emergency bool    `json:"emergency"`
	Stages    []Stage `json:"stages"`
	// Current is the index of the stage in progress; len(Stages) once all are done.
	Current int `json:"current"`
	// StartAt is when a scheduled rollout starts running.
	StartAt time.Time `json:"start_at,omitzero"`
	// Reason says why the rollout was last paused, halted, cancelled or rejected.
	Reason string `json:"reason,omitempty"`

	// The change request: required before a rollout is submitted for approval.
	Risk         string `json:"risk"`
	TestEvidence string `json:"test_evidence"`
	RollbackPlan string `json:"rollback_plan"`

	CreatedBy   string     `json:"created_by"`
	RequestedBy string     `json:"requested_by,omitempty"`
	Approvals   []Approval `json:"approvals"`
	// ApprovalsNeeded is how many distinct approvers (none of them the requester) the
	// rollout needs; set when it is submitted.
	ApprovalsNeeded int `json:"approvals_needed"`

	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	StateAt      time.Time `json:"state_at"`
	PrefetchedAt time.Time `json:"prefetched_at,omitzero"`
}

// Approval is one approver's yes.
type Approval struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Remark string    `json:"remark,omitempty"`
}

// SkipsWindows reports whether the rollout ignores maintenance windows: an approved
// emergency.
func (r *Rollout) SkipsWindows() bool {
	return r.Emergency && r.State.Released() && len(r.Approvals) >= r.ApprovalsNeeded && r.ApprovalsNeeded >= 2
}

// StageOf returns the index of ring's stage, -1 if the rollout has none for it.
func (r *Rollout) StageOf(ring string) int {
	return slices.IndexFunc(r.Stages, func(s Stage) bool { return s.Ring == ring })
}

// RingReleased reports whether ring's stage has started (so its devices may have the
// release, subject to their windows).
func (r *Rollout) RingReleased(ring string) bool {
	i := r.StageOf(ring)
	switch {
	case i < 0:
		return false
	case r.State == Completed:
		return true
	case r.State == Running || r.State == Paused:
		return i <= r.Current
	}
	return false
}

// validateSpec checks what the requester controls: name, stages, change fields.
func (r *Rollout) validateSpec(rings map[string]Ring) error {
	var errs []string
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > 200 {
		errs = append(errs, "name: must be 1-200 characters")
	}
	if len(r.Stages) == 0 || len(r.Stages) > 20 {
		errs = append(errs, "stages: must list 1-20 ring stages")
	}
	seen := map[string]bool{}
	for i, s := range r.Stages {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Sprintf("stages[%d]: %v", i, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")))
			continue
		}
		if _, ok := rings[s.Ring]; !ok {
			errs = append(errs, fmt.Sprintf("stages[%d].ring: no ring named %q", i, s.Ring))
		}
		if seen[s.Ring] {
			errs = append(errs, fmt.Sprintf("stages[%d].ring: ring %q has two stages", i, s.Ring))
		}
		seen[s.Ring] = true
	}
	for _, f := range []struct{ name, v string }{{"risk", r.Risk}, {"test_evidence", r.TestEvidence}, {"rollback_plan", r.RollbackPlan}} {
		if len(f.v) > 20000 {
			errs = append(errs, f.name+": at most 20000 characters")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: rollout: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func (r *Rollout) set(s State, now time.Time) {
	r.State, r.StateAt, r.UpdatedAt = s, now, now
}

func (r *Rollout) stateErr(action string) error {
	return fmt.Errorf("rollout %d: %s: %w (it is %s)", r.ID, action, ErrState, r.State)
}

// submit asks for approval: draft → pending_approval. by becomes the requester; the
// change request must be complete.
func (r *Rollout) submit(by string, need int, now time.Time) error {
	if r.State != Draft {
		return r.stateErr("submit")
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"risk", r.Risk}, {"test_evidence", r.TestEvidence}, {"rollback_plan", r.RollbackPlan}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("rollout %d: submit: %w: the change request needs %s", r.ID, ErrInvalid, strings.Join(missing, ", "))
	}
	r.RequestedBy, r.Approvals, r.ApprovalsNeeded, r.Reason = by, nil, need, ""
	r.set(PendingApproval, now)
	return nil
}

// approve records by's approval; the rollout becomes approved once it has as many
// distinct approvers as it needs. The requester cannot approve, nor can anyone twice.
func (r *Rollout) approve(by, remark string, now time.Time) (approved bool, err error) {
	if r.State != PendingApproval {
		return false, r.stateErr("approve")
	}
	if by == "" {
		return false, fmt.Errorf("rollout %d: approve: %w: no approver named", r.ID, ErrInvalid)
	}
	if by == r.RequestedBy {
		return false, fmt.Errorf("rollout %d: approve: %w: %s requested this rollout and cannot approve it", r.ID, ErrSeparation, by)
	}
	if slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.By == by }) {
		return false, fmt.Errorf("rollout %d: approve: %w: %s has approved already; it needs %d different approvers", r.ID, ErrSeparation, by, r.ApprovalsNeeded)
	}
	r.Approvals = append(r.Approvals, Approval{By: by, At: now, Remark: remark})
	r.UpdatedAt = now
	if len(r.Approvals) < r.ApprovalsNeeded {
		return false, nil
	}
	r.set(Approved, now)
	return true, nil
}

// reject sends the request back to draft with a remark; approvals are dropped.
func (r *Rollout) reject(by, remark string, now time.Time) error {
	if r.State != PendingApproval {
		return r.stateErr("reject")
	}
	if by == r.RequestedBy {
		return fmt.Errorf("rollout %d: reject: %w: %s requested this rollout; withdraw it by cancelling", r.ID, ErrSeparation, by)
	}
	if strings.TrimSpace(remark) == "" {
		return fmt.Errorf("rollout %d: reject: %w: a remark saying why is required", r.ID, ErrInvalid)
	}
	r.Approvals, r.Reason = nil, "rejected by "+by+": "+remark
	r.set(Draft, now)
	return nil
}

// schedule sets the start: approved → scheduled. A zero or past start means now.
func (r *Rollout) schedule(start, now time.Time) error {
	if r.State != Approved {
		return r.stateErr("schedule")
	}
	if start.Before(now) {
		start = now
	}
	r.StartAt = start
	r.set(Scheduled, now)
	return nil
}

// start begins the first stage: scheduled → running.
func (r *Rollout) start(now time.Time) error {
	if r.State != Scheduled {
		return r.stateErr("start")
	}
	r.Current = 0
	r.Stages[0].StartedAt, r.Stages[0].ErrorsSince = now, now
	r.set(Running, now)
	return nil
}

// advance finishes the current stage and starts the next, or completes the rollout.
// forcedBy is empty when the thresholds advanced it.
func (r *Rollout) advance(forcedBy string, now time.Time) error {
	if r.State != Running {
		return r.stateErr("advance")
	}
	st := &r.Stages[r.Current]
	st.DoneAt, st.ForcedBy = now, forcedBy
	r.Current++
	r.UpdatedAt = now
	if r.Current == len(r.Stages) {
		r.set(Completed, now)
		return nil
	}
	next := &r.Stages[r.Current]
	next.StartedAt, next.ErrorsSince = now, now
	return nil
}

// pause stops handing out the release: running → paused.
func (r *Rollout) pause(reason string, now time.Time) error {
	if r.State != Running {
		return r.stateErr("pause")
	}
	r.Reason = reason
	r.set(Paused, now)
	return nil
}

// resume continues a paused rollout; the current stage's error threshold counts only
// results from now on.
func (r *Rollout) resume(now time.Time) error {
	if r.State != Paused {
		return r.stateErr("resume")
	}
	r.Stages[r.Current].ErrorsSince = now
	r.Reason = ""
	r.set(Running, now)
	return nil
}

// halt stops a rollout for good.
func (r *Rollout) halt(reason string, now time.Time) error {
	if r.State != Scheduled && r.State != Running && r.State != Paused {
		return r.stateErr("halt")
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("rollout %d: halt: %w: a reason is required", r.ID, ErrInvalid)
	}
	r.Reason = reason
	r.set(Halted, now)
	return nil
}

// cancel withdraws a rollout that has not started.
func (r *Rollout) cancel(reason string, now time.Time) error {
	switch r.State {
	case Draft, PendingApproval, Approved, Scheduled:
	default:
		return r.stateErr("cancel")
	}
	r.Reason = reason
	r.set(Cancelled, now)
	return nil
}
