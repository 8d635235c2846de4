package periodic

import (
	"context"
	"testing"
	"time"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
)

var t0 = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

// run is a Loop under test with a fake clock: each run and each due time it fixes
// arrive on a channel, so the test steps it without sleeping.
type run struct {
	clk  *clock.Fake
	due  chan time.Time
	runs chan bool // asked
}

func start(t *testing.T, l Loop) *run {
	t.Helper()
	r := &run{clk: clock.NewFake(t0), due: make(chan time.Time, 8), runs: make(chan bool, 8)}
	l.Clock = r.clk
	l.Due = func(d time.Time) { r.due <- d }
	clocktest.Run(t, func(ctx context.Context) error {
		l.Run(ctx, func(_ context.Context, asked bool) { r.runs <- asked })
		return nil
	})
	return r
}

func (r *run) wantDue(t *testing.T, want time.Time) {
	t.Helper()
	if got := clocktest.Receive(t, r.due, "the next due time"); !got.Equal(want) {
		t.Fatalf("due = %s, want %s", got, want)
	}
}

func (r *run) wantRun(t *testing.T, asked bool) {
	t.Helper()
	if got := clocktest.Receive(t, r.runs, "a run"); got != asked {
		t.Fatalf("run asked = %v, want %v", got, asked)
	}
}

// armed waits until the loop waits on n timers of the fake clock.
func (r *run) armed(t *testing.T, n int) {
	t.Helper()
	clocktest.WaitFor(t, "the loop to wait", func() bool { return r.clk.Waiters() == n })
}

func TestRunsAtOnceThenEveryInterval(t *testing.T) {
	r := start(t, Loop{Every: time.Hour})
	r.wantDue(t, t0)
	r.wantRun(t, false)
	for i := 1; i <= 3; i++ {
		r.wantDue(t, t0.Add(time.Duration(i)*time.Hour))
		r.armed(t, 1)
		r.clk.Advance(time.Hour)
		r.wantRun(t, false)
	}
}

// A run asked for runs at once; the scheduled one after it is due an interval later,
// or, with KeepDue, when it was due before.
func TestAskedRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keepDue bool
		next    time.Time
	}{
		{name: "interval starts again", next: t0.Add(10*time.Minute + time.Hour)},
		{name: "keep due", keepDue: true, next: t0.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ask := NewAsk()
			r := start(t, Loop{Every: time.Hour, Ask: ask, KeepDue: tc.keepDue})
			r.wantDue(t, t0)
			r.wantRun(t, false)
			r.wantDue(t, t0.Add(time.Hour))
			r.armed(t, 1)
			r.clk.Advance(10 * time.Minute)
			ask.Soon()
			r.wantRun(t, true)
			r.wantDue(t, tc.next)
			r.armed(t, 2) // the first timer is still pending in the fake clock
			r.clk.Set(tc.next)
			r.wantRun(t, false)
			if len(r.runs) != 0 {
				t.Errorf("%d runs more than asked for", len(r.runs))
			}
		})
	}
}

// daily is a window open from 02:00 to 03:00 every day (UTC).
type daily struct{}

func (daily) Open(t time.Time) bool { return t.Hour() == 2 }

func (daily) Next(t time.Time) time.Time {
	if t.Hour() == 2 {
		return t
	}
	d := time.Date(t.Year(), t.Month(), t.Day(), 2, 0, 0, 0, time.UTC)
	if d.Before(t) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// Scheduled runs wait for the window; one woken past it waits for the next opening;
// one asked for runs at once and leaves the scheduled one due.
func TestWindowHoldsScheduledRuns(t *testing.T) {
	ask := NewAsk()
	r := start(t, Loop{Every: time.Hour, Ask: ask, Window: daily{}, KeepDue: true})
	opens := t0.Add(2 * time.Hour)
	r.wantDue(t, opens)
	r.armed(t, 1)
	ask.Soon()
	r.wantRun(t, true)
	r.wantDue(t, opens)
	r.armed(t, 2)
	r.clk.Set(t0.Add(5 * time.Hour)) // the timer fires, but the window has closed
	r.wantDue(t, opens.AddDate(0, 0, 1))
	r.armed(t, 1)
	r.clk.Set(opens.AddDate(0, 0, 1))
	r.wantRun(t, false)
	if len(r.runs) != 0 {
		t.Errorf("%d runs outside the window", len(r.runs))
	}
}

func TestAskHoldsOneRequest(t *testing.T) {
	ask := NewAsk()
	ask.Soon()
	ask.Soon() // asked again before the loop takes it: still one run, and no wait
	if len(ask) != 1 {
		t.Errorf("requests held = %d, want 1", len(ask))
	}
}

func TestStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	runs := 0
	go func() {
		Loop{Clock: clock.NewFake(t0), Every: time.Hour}.Run(ctx, func(context.Context, bool) { runs++; cancel() })
		close(done)
	}()
	clocktest.Receive(t, done, "Run to return")
	if runs != 1 {
		t.Errorf("runs = %d, want 1 (the one that ended the context)", runs)
	}
}
