package rollout

import (
	"fmt"
	"net/http"
	"time"
)

// access is what a device of ring in segment may do with rollout r at now.
type access struct {
	status     int // when nothing is allowed: 503 (later) or 403 (never, for this rollout)
	download   bool
	install    bool
	retryAfter time.Duration // when something is not allowed: ask again after this
	reason     string
	opening    Opening
	hasWindow  bool
	stage      int
}

func (e *Engine) access(s *snapshot, r *Rollout, ring, segment string, now time.Time) access {
	a := access{status: http.StatusServiceUnavailable, stage: r.StageOf(ring)}
	a.opening, a.hasWindow = s.opening(ring, segment, now)
	if a.stage < 0 {
		a.status, a.reason = http.StatusForbidden, fmt.Sprintf("rollout %d has no stage for ring %s", r.ID, ring)
		return a
	}
	windowOpen := r.SkipsWindows() || (a.hasWindow && a.opening.Open)
	untilOpen := e.cfg.Recheck
	if !windowOpen && a.hasWindow && !a.opening.Open && !a.opening.Start.IsZero() {
		untilOpen = a.opening.Start.Sub(now)
	}
	switch {
	case r.State == Paused:
		a.retryAfter, a.reason = e.cfg.Recheck, fmt.Sprintf("rollout %d is paused: %s", r.ID, r.Reason)
	case r.State == Approved || r.State == Scheduled:
		a.retryAfter, a.reason = max(r.StartAt.Sub(now), untilOpen, e.cfg.Recheck), fmt.Sprintf("rollout %d has not started", r.ID)
	case !r.RingReleased(ring):
		a.retryAfter, a.reason = max(untilOpen, e.cfg.Recheck), fmt.Sprintf("rollout %d: ring %s waits for ring %s", r.ID, ring, r.Stages[min(r.Current, len(r.Stages)-1)].Ring)
	default:
		a.install = windowOpen
		a.download = windowOpen || r.Stages[a.stage].Prestage
		switch {
		case windowOpen:
		case !a.hasWindow:
			a.retryAfter, a.reason = e.cfg.Recheck, fmt.Sprintf("no maintenance window applies to ring %s in segment %q", ring, segment)
		case a.opening.Start.IsZero():
			a.retryAfter, a.reason = e.cfg.Recheck, fmt.Sprintf("the maintenance windows of ring %s have no more openings", ring)
		default:
			a.retryAfter, a.reason = untilOpen, fmt.Sprintf("maintenance window closed; opens %s", a.opening.Start.UTC().Format(time.RFC3339))
		}
	}
	if a.retryAfter > 0 && a.retryAfter < time.Second {
		a.retryAfter = time.Second
	}
	return a
}
