package tuf_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/metric/metrictest"
	"github.com/patchgate/patchgate/tuf"
)

func siteConfig(dir string) tuf.RefresherConfig {
	return tuf.RefresherConfig{Name: "site", Dir: dir, TimestampExpiry: 24 * time.Hour, SnapshotExpiry: 7 * 24 * time.Hour,
		ResignEvery: 6 * time.Hour, WarnBefore: 48 * time.Hour}
}

// waitIdle waits until r's Run has checked and armed its timer again: its one
// timer is the fake clock's only waiter, so none means a check is under way.
func waitIdle(t *testing.T, r *tuf.Refresher, fc *clock.Fake) {
	t.Helper()
	for r.LastCheck().IsZero() || fc.Waiters() == 0 {
		runtime.Gosched()
		time.Sleep(20 * time.Microsecond)
	}
}

// TestRefresherYear runs a year of fake-clock time in 1 h steps with the refresher
// running: a release is approved every 30 days, root is renewed once by the offline
// ceremony, and every day a stock go-tuf client (reference time: the fake clock)
// refreshes without error; health never reports a problem.
func TestRefresherYear(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dir, rootKeys := t.TempDir(), t.TempDir()
	p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{RootKeys: 3, RootThreshold: 2, RootKeysDir: rootKeys, Now: fc.Now})
	if err != nil {
		t.Fatal(err)
	}
	release := func(n int) {
		t.Helper()
		if _, err := p.Add(ctx, writeTemp(t, fmt.Sprintf("release %d", n)), fmt.Sprintf("pos/release-%d.bin", n), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Publish(ctx); err != nil {
			t.Fatalf("day %d: publish: %v", n, err)
		}
	}
	release(0)
	cfg := siteConfig(dir)
	if testing.Short() {
		cfg.ResignEvery = 12 * time.Hour // the longest valid: half the re-signs, the least margin
	}
	r, err := tuf.NewRefresher(cfg, tuf.Options{Clock: fc, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitIdle(t, r, fc)
	client := newStockClient(t, p)
	rootKeyFiles, _ := filepath.Glob(filepath.Join(rootKeys, "*.pem"))

	for hour := 1; hour <= 365*24; hour++ {
		fc.Advance(time.Hour)
		waitIdle(t, r, fc)
		if hour%24 != 0 {
			continue
		}
		day := hour / 24
		switch {
		case day%30 == 0:
			release(day)
			if err := r.Check(ctx); err != nil { // what the approval flow's Changed leads to
				t.Fatal(err)
			}
		case day == 310: // root expires on day 365: the ceremony renews it
			proposal, err := p.ExportRoot(tuf.RootChange{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.ImportRoot(ctx, signBy(t, proposal, rootKeyFiles[0], rootKeyFiles[2])...); err != nil {
				t.Fatalf("day %d: root renewal: %v", day, err)
			}
		}
		if _, err := client.refresh(fc.Now(), ""); err != nil {
			t.Fatalf("day %d: stock client refused the repository: %v", day, err)
		}
		if ps := r.Health(); len(ps) != 0 {
			t.Fatalf("day %d: health: %+v", day, ps)
		}
		if left := r.Remaining("timestamp"); left < cfg.TimestampExpiry-cfg.ResignEvery-time.Second {
			t.Fatalf("day %d: timestamp expires in %s, want re-signed every %s", day, left, cfg.ResignEvery)
		}
		if left := r.Remaining("snapshot"); left < 3*24*time.Hour {
			t.Fatalf("day %d: snapshot expires in %s, want re-signed at half its life", day, left)
		}
	}
	if got, err := client.refresh(fc.Now(), "pos/release-360.bin"); err != nil || got != "release 360" {
		t.Errorf("after a year: %q, %v", got, err)
	}
}

func TestRefresherWarnsBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	fc := clock.NewFake(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	if _, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{TargetsExpires: 72 * time.Hour, Now: fc.Now}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := tuf.NewRefresher(siteConfig(dir), tuf.Options{Clock: fc, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	codes := func() string {
		var out []string
		for _, p := range r.Health() {
			out = append(out, p.Code+"/"+p.Severity.String())
		}
		return strings.Join(out, ",")
	}
	if err := r.Check(ctx); err != nil || codes() != "" {
		t.Fatalf("fresh: %v, health %q", err, codes())
	}
	fc.Advance(25 * time.Hour)
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := codes(); got != "tuf-site-role-expiring/warning" {
		t.Errorf("47 h before targets expire: health %q, want tuf-site-role-expiring", got)
	}
	if ps := r.Health(); len(ps) == 1 && !strings.Contains(ps[0].Text, "targets") {
		t.Errorf("warning does not name targets: %s", ps[0].Text)
	}
	if got := gauge(t, reg, "patchgate_tuf_site_role_expiry_seconds", "targets"); got != (47 * time.Hour).Seconds() {
		t.Errorf("role_expiry_seconds{role=targets} = %v, want %v", got, (47 * time.Hour).Seconds())
	}
	if got := gauge(t, reg, "patchgate_tuf_site_role_expiry_seconds", "timestamp"); got != (24 * time.Hour).Seconds() {
		t.Errorf("role_expiry_seconds{role=timestamp} = %v, want a fresh day (re-signed)", got)
	}

	// Targets lapse; then the online keys go missing: re-signing fails.
	fc.Advance(48 * time.Hour)
	for _, f := range onlineKeyFiles(t, dir) {
		os.Remove(f)
	}
	if err := r.Check(ctx); err == nil {
		t.Fatal("Check without online keys: no error")
	}
	ps := r.Health()
	w, _ := health.Worst(ps)
	if got := codes(); !strings.Contains(got, "tuf-site-resign-failed/error") || !strings.Contains(got, "tuf-site-role-expired/error") || w.Severity != health.Error {
		t.Errorf("expired targets, missing keys: health %q", got)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name, role string) float64 {
	t.Helper()
	v, ok := metrictest.Value(t, reg, name, "role", role)
	if !ok {
		t.Fatalf("no %s{role=%q}", name, role)
	}
	return v
}
