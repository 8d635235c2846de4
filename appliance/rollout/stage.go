package rollout

import (
	"fmt"
	"strings"
	"time"
)

// Stage is one ring's step of a rollout: the thresholds that decide when it is done
// (or failing) and its progress. A stage advances only when its success threshold is
// met AND its soak time has passed since it was first met; its error threshold pauses
// the rollout.
type Stage struct {
	Ring string `json:"ring"`
	// SuccessPercent of the ring's deployments (cancelled ones aside) must have
	// succeeded (or been skipped: the device already had it). 0 < x <= 100.
	SuccessPercent float64 `json:"success_percent"`
	// ErrorPercent: the rollout pauses when at least this share of the results that
	// came in (failed / (failed + succeeded)) failed, once MinResults results are in.
	// Results before the stage's last resume do not count. 0 < x <= 100.
	ErrorPercent float64 `json:"error_percent"`
	MinResults   int     `json:"min_results"`
	// Soak is how long the release must have been on the ring (counted from the moment
	// the success threshold was first met) before the next ring gets it.
	Soak Duration `json:"soak"`
	// MaxConcurrent limits simultaneous downloads in this ring (0: no limit).
	MaxConcurrent int `json:"max_concurrent"`
	// Prestage lets the ring's devices download outside their windows (installing still
	// waits for a window).
	Prestage bool `json:"prestage"`

	StartedAt   time.Time `json:"started_at,omitzero"`
	MetAt       time.Time `json:"met_at,omitzero"`
	ErrorsSince time.Time `json:"errors_since,omitzero"`
	DoneAt      time.Time `json:"done_at,omitzero"`
	// ForcedBy names who advanced the stage without its thresholds, if anyone.
	ForcedBy string `json:"forced_by,omitempty"`
}

// Validate checks a stage's parameters (not its ring's existence).
func (s *Stage) Validate() error {
	var errs []string
	if !nameRE.MatchString(s.Ring) {
		errs = append(errs, fmt.Sprintf("ring: not a ring name: %q", s.Ring))
	}
	if !(s.SuccessPercent > 0 && s.SuccessPercent <= 100) {
		errs = append(errs, fmt.Sprintf("success_percent: must be more than 0 and at most 100, got %g", s.SuccessPercent))
	}
	if !(s.ErrorPercent > 0 && s.ErrorPercent <= 100) {
		errs = append(errs, fmt.Sprintf("error_percent: must be more than 0 and at most 100, got %g", s.ErrorPercent))
	}
	if s.MinResults < 1 || s.MinResults > 100000 {
		errs = append(errs, fmt.Sprintf("min_results: must be 1-100000, got %d", s.MinResults))
	}
	if s.Soak < 0 || s.Soak.D() > 90*24*time.Hour {
		errs = append(errs, fmt.Sprintf("soak: must be 0-90 days, got %s", s.Soak))
	}
	if s.MaxConcurrent < 0 || s.MaxConcurrent > 100000 {
		errs = append(errs, fmt.Sprintf("max_concurrent: must be 0 (no limit) to 100000, got %d", s.MaxConcurrent))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Counts are a ring's deployment results for one rollout.
type Counts struct {
	Total     int `json:"total"`     // deployments, cancelled ones aside
	Succeeded int `json:"succeeded"` // succeeded or skipped
	Failed    int `json:"failed"`    // last attempt failed (retrying or final)
	InFlight  int `json:"in_flight"` // downloading, downloaded or installing
	// Results that came in since the stage's error baseline (start or last resume).
	RecentSucceeded int `json:"recent_succeeded"`
	RecentFailed    int `json:"recent_failed"`
}

// Action is what a stage's evaluation calls for.
type Action int

// Actions.
const (
	Wait Action = iota
	Advance
	Pause
)

func (a Action) String() string {
	return [...]string{"wait", "advance", "pause"}[a]
}

// Verdict is the outcome of evaluating a stage: the action, why, and when the success
// threshold was first met (zero if it has not been).
type Verdict struct {
	Action Action
	Reason string
	MetAt  time.Time
}

// Evaluate applies the stage's thresholds to c at now. The error threshold is checked
// first: a stage that merely finished with too many failures pauses, it never advances.
func (s *Stage) Evaluate(c Counts, now time.Time) Verdict {
	minN := max(s.MinResults, 1)
	results := c.RecentSucceeded + c.RecentFailed
	if results >= minN && float64(c.RecentFailed)*100 >= s.ErrorPercent*float64(results) {
		return Verdict{Action: Pause, MetAt: s.MetAt, Reason: fmt.Sprintf(
			"ring %s: %d of %d results failed (%s), error threshold %g%% once %d results are in",
			s.Ring, c.RecentFailed, results, percent(c.RecentFailed, results), s.ErrorPercent, minN)}
	}
	if c.Total == 0 {
		// Nothing to soak: an empty ring does not hold the next one back.
		return Verdict{Action: Advance, MetAt: now, Reason: fmt.Sprintf("ring %s has no devices", s.Ring)}
	}
	met := float64(c.Succeeded)*100 >= s.SuccessPercent*float64(c.Total)
	if !met {
		return Verdict{Action: Wait, MetAt: s.MetAt, Reason: fmt.Sprintf(
			"ring %s: %d of %d succeeded (%s), needs %g%%", s.Ring, c.Succeeded, c.Total, percent(c.Succeeded, c.Total), s.SuccessPercent)}
	}
	metAt := s.MetAt
	if metAt.IsZero() {
		metAt = now
	}
	if until := metAt.Add(s.Soak.D()); now.Before(until) {
		return Verdict{Action: Wait, MetAt: metAt, Reason: fmt.Sprintf(
			"ring %s: %d of %d succeeded; soaking until %s", s.Ring, c.Succeeded, c.Total, until.UTC().Format(time.RFC3339))}
	}
	return Verdict{Action: Advance, MetAt: metAt, Reason: fmt.Sprintf(
		"ring %s: %d of %d succeeded (%s >= %g%%) and soaked %s", s.Ring, c.Succeeded, c.Total, percent(c.Succeeded, c.Total), s.SuccessPercent, s.Soak)}
}

func percent(part, whole int) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}
