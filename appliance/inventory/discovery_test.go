package inventory

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/passive"
	"github.com/patchgate/patchgate/netscan/scantest"
)

// TestDiscoverySchedule runs discovery on a fake clock: the scan waits for its cron
// time, probes a loopback listener then, and the observation is merged at the next
// flush tick. A capture on an interface that does not exist is a health warning, not
// a failure.
func TestDiscoverySchedule(t *testing.T) {
	port := uint16(scantest.OpenPort(t, "127.0.9.1:0"))
	f := newFixture(t)
	d, err := NewDiscovery(f.inv, DiscoveryConfig{
		Passive: []passive.Config{{Interface: "pg-nosuch0"}},
		Scan: &active.Config{Subnets: []netip.Prefix{netip.MustParsePrefix("127.0.9.1/32")}, Ports: []uint16{port},
			PingPorts: []uint16{port}, Probes: []active.Probe{active.ProbeTCP}, Timeout: time.Second},
		Schedule: "*/5 * * * *", Location: time.UTC,
	}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), f.clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (status %+v)", what, d.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The flush ticker and the wait for the schedule.
	poll("discovery to wait on the clock", func() bool { return d.Ready() && f.clock.Waiters() >= 2 })
	st := d.Status()
	if want := t0.Add(5 * time.Minute); !st.NextScan.Equal(want) {
		t.Errorf("NextScan = %v, want %v", st.NextScan, want)
	}
	if st.PassiveError == "" || len(d.Health()) == 0 || d.Health()[0].Code != "discovery-passive" {
		t.Errorf("a capture that cannot open is not reported: %+v %v", st, d.Health())
	}
	if !st.LastEnd.IsZero() {
		t.Fatalf("scanned before its time: %+v", st)
	}
	f.clock.Advance(5 * time.Minute)
	poll("the scheduled scan", func() bool { return !d.Status().LastEnd.IsZero() })
	if s := d.Status(); s.LastSummary.Live != 1 || s.LastError != "" {
		t.Errorf("scan summary = %+v", s)
	}
	// The next flush tick merges what the scan found.
	poll("the asset", func() bool {
		f.clock.Advance(time.Second)
		as, _ := f.inv.List(context.Background(), Filter{})
		return len(as) == 1
	})
	if err := d.ScanNow(); err != nil {
		t.Errorf("ScanNow after a scan: %v", err)
	}
}
