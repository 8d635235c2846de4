package forward

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
)

// openTrail opens a real audit trail in dir (closed at cleanup).
func openTrail(t *testing.T, dir string, c clock.Clock) *audit.Log {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(dir, "audit"), Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); db.Close() })
	return l
}

// TestAlertWatcher: each overdue or silent device is recorded once per episode, also
// across a restart of the watcher, and the records go out as warnings.
func TestAlertWatcher(t *testing.T) {
	dir := t.TempDir()
	fc := clock.NewFake(t0)
	l := openTrail(t, dir, fc)
	var mu sync.Mutex
	conds := []Condition{
		{Action: ActionOverdue, Object: "asset/a1", Episode: "fw-2.1", Details: map[string]string{"asset": "robot-1", "release": "fw-2.1"}},
		{Action: ActionSilent, Object: "agent/ag-1", Episode: t0.Format(time.RFC3339), Details: map[string]string{"hostname": "pos-2", "address": "10.20.0.9"}},
	}
	check := func(context.Context) ([]Condition, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([]Condition(nil), conds...), nil
	}
	alerts := func() []audit.Record {
		recs, err := l.Records(context.Background(), audit.Query{Action: "alert."})
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	for _, step := range []struct {
		name  string
		setup func()
		want  int
	}{
		{"first look records both", func() {}, 2},
		{"same conditions after a restart: nothing new", func() {}, 2},
		{"the agent goes silent again later: a new episode", func() {
			mu.Lock()
			conds[1].Episode = t0.Add(48 * time.Hour).Format(time.RFC3339)
			mu.Unlock()
		}, 3},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.setup()
			wc := clock.NewFake(t0) // its own clock: a step is done once its watcher waits
			w := &AlertWatcher{Every: time.Hour, Check: check, Trail: l, Clock: wc}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			clocktest.WaitFor(t, "the first check", func() bool { return wc.Waiters() > 0 })
			cancel()
			<-done
			if got := alerts(); len(got) != step.want {
				t.Fatalf("%d alert records, want %d: %+v", len(got), step.want, got)
			}
		})
	}
	for _, r := range alerts() {
		if sev, alert := classify(r.Action); sev != sevWarning || alert == "" {
			t.Errorf("%s is forwarded with severity %d alert %q, want a warning alert", r.Action, sev, alert)
		}
	}
}
