// Package periodic runs a job at once and then again on its interval, or at once when
// it is asked for, until the context ends: the one loop behind the supply sources'
// checks and the advisory feeds' fetches and matching.
package periodic

import (
	"context"
	"time"

	"github.com/patchgate/patchgate/clock"
)

// Ask carries a run asked for now. Make one with NewAsk before the loop starts, so that
// Soon works whether or not the loop runs yet.
type Ask chan struct{}

// NewAsk returns an Ask that holds one request.
func NewAsk() Ask { return make(Ask, 1) }

// Soon asks the loop for a run at once and returns at once; asking again before the
// loop has taken the request still makes one run.
func (a Ask) Soon() {
	select {
	case a <- struct{}{}:
	default: // one is already asked for
	}
}

// Window narrows when a scheduled run may start (a download window); a run asked for
// starts at once regardless.
type Window interface {
	// Next is t when a run may start at t, else the next time one may.
	Next(t time.Time) time.Time
	// Open reports whether a run may start at t.
	Open(t time.Time) bool
}

// Loop is one job's schedule.
type Loop struct {
	Clock clock.Clock
	// Every is how long after a run the next scheduled one is due.
	Every time.Duration
	// Ask, if set, starts a run at once when asked.
	Ask Ask
	// Window, if set, holds scheduled runs until it opens; a run woken past it waits
	// for the next opening.
	Window Window
	// KeepDue leaves the scheduled run due when it was after a run asked for in the
	// meantime; without it, the interval starts again after every run.
	KeepDue bool
	// Due, if set, is told each time the next scheduled run is fixed (for a status).
	Due func(due time.Time)
}

// Run calls job at once (within the window, if there is one), then whenever the next
// run is due or asked for, until ctx ends. job is told whether the run was asked for;
// Run returns when ctx ends, never in the middle of a job.
func (l Loop) Run(ctx context.Context, job func(ctx context.Context, asked bool)) {
	due := l.Clock.Now()
	for {
		if now := l.Clock.Now(); due.Before(now) {
			due = now
		}
		if l.Window != nil {
			due = l.Window.Next(due)
		}
		if l.Due != nil {
			l.Due(due)
		}
		asked := false
		if wait := due.Sub(l.Clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-l.Clock.After(wait):
			case <-l.Ask: // a nil Ask never receives
				asked = true
			}
		}
		if !asked && l.Window != nil && !l.Window.Open(l.Clock.Now()) {
			continue // woken late, past the window: wait for the next opening
		}
		job(ctx, asked)
		if ctx.Err() != nil {
			return
		}
		if asked && l.KeepDue && due.After(l.Clock.Now()) {
			continue // the scheduled run stays due when it was
		}
		due = l.Clock.Now().Add(l.Every)
	}
}
