package forward

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
)

// TestReceiverDownAndRestart: the target goes away while records come in and comes
// back; then the forwarder itself restarts. Every record arrives once, in order: the
// cursor is saved after each acknowledged batch and read again at start.
func TestReceiverDownAndRestart(t *testing.T) {
	cert, ca := testCA(t)
	for _, tc := range []struct {
		name   string
		target func(t *testing.T) (tg func(t *testing.T) Target, down, up func(), got func() []uint64)
	}{
		{"syslog server stops and starts again", func(t *testing.T) (func(t *testing.T) Target, func(), func(), func() []uint64) {
			r := newSyslogReceiver(t, cert)
			return func(t *testing.T) Target { return syslogTarget(t, r.addr, ca) }, r.stop, r.start, r.seqs
		}},
		{"HTTPS endpoint answers 503 for a while", func(t *testing.T) (func(t *testing.T) Target, func(), func(), func() []uint64) {
			r := newJSONReceiver(t)
			return func(t *testing.T) Target { return httpsTarget(t, r) }, func() { r.setDown(true) }, func() { r.setDown(false) }, r.seqs
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := &trail{}
			tr.add(10)
			target, down, up, got := tc.target(t)
			run := start(t, options(t, tr, dir), target(t))
			clocktest.WaitFor(t, "10 records", func() bool { return len(got()) >= 10 })
			down()
			tr.add(10)
			clocktest.WaitFor(t, "a failed send", func() bool { return run.s.Status()[0].Error != "" })
			if st := run.s.Status()[0]; st.Backlog == 0 || len(run.s.Health()) != 1 {
				t.Errorf("while down: Status = %+v, Health = %v; want a backlog and a warning", st, run.s.Health())
			}
			up()
			clocktest.WaitFor(t, "20 records", func() bool { return len(got()) >= 20 })
			clocktest.WaitFor(t, "backlog 0", func() bool { return run.s.Status()[0].Backlog == 0 })
			run.stop()

			if b, err := os.ReadFile(filepath.Join(dir, "cursor-"+target(t).Name)); err != nil || string(b) != "20\n" {
				t.Fatalf("cursor file = %q, %v; want \"20\\n\"", b, err)
			}
			tr.add(5)
			run = start(t, options(t, tr, dir), target(t))
			clocktest.WaitFor(t, "25 records", func() bool { return len(got()) >= 25 })
			clocktest.WaitFor(t, "backlog 0", func() bool { return run.s.Status()[0].Backlog == 0 })
			if g := got(); !equal(g, inOrder(25)) {
				t.Errorf("received %v, want 1..25 in order, once", g)
			}
		})
	}
}

// fakeSink records each batch and the fake time it was sent at.
type fakeSink struct {
	clock *clock.Fake
	mu    sync.Mutex
	fail  bool
	sends []send
}

type send struct {
	at time.Time
	n  int
}

func (s *fakeSink) Send(_ context.Context, recs []audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return context.DeadlineExceeded
	}
	s.sends = append(s.sends, send{s.clock.Now(), len(recs)})
	return nil
}

func (s *fakeSink) setFail(f bool) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *fakeSink) sent() (n int, out []send) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.sends {
		n += x.n
	}
	return n, append(out, s.sends...)
}

func (s *fakeSink) String() string { return "fake" }
func (s *fakeSink) Close() error   { return nil }

func TestRateBound(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rate, batch int
		records     int
	}{
		{"batch larger than the rate", 10, 100, 35},
		{"batch smaller than the rate", 50, 20, 130},
		{"one a second", 1, 10, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trail{}
			tr.add(tc.records)
			opts := options(t, tr, t.TempDir())
			opts.Rate, opts.Batch = tc.rate, tc.batch
			sink := &fakeSink{clock: opts.Clock.(*clock.Fake)}
			start(t, opts, Target{"fake", sink})
			clocktest.WaitFor(t, "every record", func() bool { n, _ := sink.sent(); return n == tc.records })
			_, sends := sink.sent()
			for i, s := range sends {
				if s.n > tc.rate {
					t.Errorf("send %d carried %d messages, more than the rate %d", i, s.n, tc.rate)
				}
				if i == 0 {
					continue
				}
				prev := sends[i-1]
				if min := time.Duration(prev.n) * time.Second / time.Duration(tc.rate); s.at.Sub(prev.at) < min {
					t.Errorf("send %d came %s after the one before (%d messages), want at least %s", i, s.at.Sub(prev.at), prev.n, min)
				}
			}
		})
	}
}

func TestBacklog(t *testing.T) {
	tr := &trail{}
	tr.add(12)
	opts := options(t, tr, t.TempDir())
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	sink := &fakeSink{clock: opts.Clock.(*clock.Fake), fail: true}
	run := start(t, opts, Target{"fake", sink})
	clocktest.WaitFor(t, "a failed send", func() bool { return run.s.Status()[0].Error != "" })
	if st := run.s.Status()[0]; st.Backlog != 12 || st.Cursor != 0 {
		t.Errorf("Status = %+v, want backlog 12 at cursor 0", st)
	}
	if got := gauge(t, reg, "patchgate_siem_backlog_records"); got != 12 {
		t.Errorf("patchgate_siem_backlog_records = %v, want 12", got)
	}
	sink.setFail(false)
	clocktest.WaitFor(t, "backlog 0", func() bool { return run.s.Status()[0].Backlog == 0 })
	if got := gauge(t, reg, "patchgate_siem_forwarded_records_total"); got != 12 {
		t.Errorf("forwarded_records_total = %v, want 12", got)
	}
	if len(run.s.Health()) != 0 {
		t.Errorf("Health = %v after catching up, want none", run.s.Health())
	}
}

func TestBadCursorFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cursor-fake"), []byte("twelve\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Dir: dir, Source: &trail{}}, Target{"fake", &fakeSink{}})
	if err == nil || !strings.Contains(err.Error(), "cursor-fake") {
		t.Errorf("New with a corrupt cursor = %v, want an error naming the file", err)
	}
}

// gauge reads the one value of a gauge or counter from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
