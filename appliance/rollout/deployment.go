package rollout

import (
	"fmt"
	"time"
)

// DeploymentState is where one device stands with one release:
//
//	scheduled → offered → downloading → downloaded → installing → succeeded
//	                                                             → failed → (back-off) scheduled, up to MaxAttempts
//	any open state → skipped (the device already has it) | cancelled (rollout halted or cancelled)
//
// Agentless devices skip offered and installing: downloaded means delivered, and a
// scan reading the new version makes it succeeded.
type DeploymentState string

// Deployment states.
const (
	DepScheduled   DeploymentState = "scheduled"
	DepOffered     DeploymentState = "offered"
	DepDownloading DeploymentState = "downloading"
	DepDownloaded  DeploymentState = "downloaded"
	DepInstalling  DeploymentState = "installing"
	DepSucceeded   DeploymentState = "succeeded"
	DepFailed      DeploymentState = "failed"
	DepSkipped     DeploymentState = "skipped"
	DepCancelled   DeploymentState = "cancelled"
)

// DeploymentStates lists every deployment state in lifecycle order.
var DeploymentStates = []DeploymentState{DepScheduled, DepOffered, DepDownloading, DepDownloaded, DepInstalling, DepSucceeded, DepFailed, DepSkipped, DepCancelled}

// Open reports whether a deployment in state s may still change by the device's doing.
func (s DeploymentState) Open() bool {
	switch s {
	case DepScheduled, DepOffered, DepDownloading, DepDownloaded, DepInstalling:
		return true
	}
	return false
}

// Done reports whether the device has the release (succeeded or skipped).
func (s DeploymentState) Done() bool { return s == DepSucceeded || s == DepSkipped }

// Deployment is one device × one release within a rollout.
type Deployment struct {
	ID        int64           `json:"id"`
	RolloutID int64           `json:"rollout_id"`
	ReleaseID int64           `json:"release_id"`
	AssetID   string          `json:"asset_id"`
	AssetName string          `json:"asset_name,omitempty"`
	AgentID   string          `json:"agent_id,omitempty"`
	Ring      string          `json:"ring"`
	State     DeploymentState `json:"state"`
	StateAt   time.Time       `json:"state_at"`
	// Times holds when the deployment last entered each state it has been in; the full
	// history (every attempt) is in the rollout's events.
	Times       map[DeploymentState]time.Time `json:"times"`
	Attempt     int                           `json:"attempt"`
	MaxAttempts int                           `json:"max_attempts"`
	RetryAt     time.Time                     `json:"retry_at,omitzero"`
	// ResultAt is when the last result (succeeded, failed, skipped) came in.
	ResultAt time.Time `json:"result_at,omitzero"`
	// Since is when the device became known (for the deadline), Deadline its SLA.
	Since    time.Time `json:"since,omitzero"`
	Deadline time.Time `json:"deadline"`
	ExitCode *int      `json:"exit_code,omitempty"`
	LogTail  string    `json:"log_tail,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// Delivered lists the target paths an agentless device has downloaded completely.
	Delivered []string `json:"delivered,omitempty"`
}

// Overdue reports whether the device should have had the release by now.
func (d *Deployment) Overdue(now time.Time) bool {
	return !d.State.Done() && d.State != DepCancelled && now.After(d.Deadline)
}

// to moves d to state s at now.
func (d *Deployment) to(s DeploymentState, now time.Time) {
	d.State, d.StateAt = s, now
	if d.Times == nil {
		d.Times = map[DeploymentState]time.Time{}
	}
	d.Times[s] = now
}

// Retry policy: the n-th retry waits base × 2^(n-1), at most max.
type backoff struct {
	base, max time.Duration
}

func (b backoff) after(attempt int) time.Duration {
	d := b.base
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// fail records a failed attempt: with attempts left the deployment will be retried at
// RetryAt; otherwise the failure is final.
func (d *Deployment) fail(b backoff, now time.Time) {
	d.to(DepFailed, now)
	d.ResultAt = now
	d.RetryAt = time.Time{}
	if d.Attempt < d.MaxAttempts {
		d.RetryAt = now.Add(b.after(d.Attempt))
	}
}

// retry starts the next attempt of a failed deployment whose back-off has passed.
func (d *Deployment) retry(now time.Time) error {
	if d.State != DepFailed || d.RetryAt.IsZero() || now.Before(d.RetryAt) {
		return fmt.Errorf("deployment %d: retry: %w", d.ID, ErrState)
	}
	d.Attempt++
	d.RetryAt = time.Time{}
	d.Delivered = nil
	d.to(DepScheduled, now)
	return nil
}
