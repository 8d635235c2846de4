package tuf_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/metric/metrictest"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// newTestClock is a settable clock whose waits pass at once (tests never wait).
func newTestClock() *clock.Fake {
	c := clock.NewFake(time.Now())
	c.SetAutoAdvance(true)
	return c
}

type mirrorEnv struct {
	repo  *tuftest.Repo
	dir   string
	clock *clock.Fake
	reg   *prometheus.Registry
}

func newMirrorEnv(t *testing.T, opts ...tuftest.Option) *mirrorEnv {
	t.Helper()
	return &mirrorEnv{repo: tuftest.New(t, opts...), dir: t.TempDir(), clock: newTestClock()}
}

func (e *mirrorEnv) mirror(t *testing.T) *tuf.Mirror {
	t.Helper()
	e.reg = prometheus.NewRegistry()
	m, err := tuf.NewMirror(tuf.MirrorConfig{
		Name: "demo", MetadataURL: e.repo.MetadataURL(), TargetsURL: e.repo.TargetsURL(),
		TrustedRoot: e.repo.Root(), StateDir: e.dir, Retries: 1, RetryBackoff: time.Millisecond,
	}, tuf.Options{Logger: slog.New(slog.DiscardHandler), Registerer: e.reg, Clock: e.clock})
	if err != nil {
		t.Fatalf("NewMirror: %v", err)
	}
	return m
}

func TestMirrorRefreshAndLookup(t *testing.T) {
	e := newMirrorEnv(t)
	e.repo.AddTarget("a.bin", []byte("hello"))
	e.repo.AddTarget("dir/b.bin", []byte("world!"))
	e.repo.Publish()
	m := e.mirror(t)
	if _, err := m.Target(context.Background(), "a.bin"); !errors.Is(err, tuf.ErrNoMetadata) {
		t.Fatalf("Target before refresh: err = %v, want ErrNoMetadata", err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	got, err := m.Target(context.Background(), "dir/b.bin")
	if err != nil {
		t.Fatalf("Target: %v", err)
	}
	if got.Length != 6 || got.Path != "dir/b.bin" || got.Role != "targets" {
		t.Errorf("Target = %+v", got)
	}
	if _, ok := got.SHA256(); !ok {
		t.Errorf("Target has no sha256: %+v", got)
	}
	if _, err := m.Target(context.Background(), "nope"); !errors.Is(err, tuf.ErrNotFound) {
		t.Errorf("Target(nope) err = %v, want ErrNotFound", err)
	}
	for _, name := range []string{"1.root.json", "root.json", "timestamp.json", "2.snapshot.json", "snapshot.json", "2.targets.json", "targets.json"} {
		data, err := m.Metadata(context.Background(), name)
		if err != nil {
			t.Errorf("Metadata(%s): %v", name, err)
			continue
		}
		if want := e.repo.Metadata(name); !bytes.Equal(data, want) {
			t.Errorf("Metadata(%s) differs from upstream bytes", name)
		}
	}
	if _, err := m.Metadata(context.Background(), "9.targets.json"); !errors.Is(err, tuf.ErrNotFound) {
		t.Errorf("Metadata(9.targets.json) err = %v, want ErrNotFound", err)
	}
	if n := metricValue(t, e.reg, "patchgate_tuf_targets"); n != 2 {
		t.Errorf("patchgate_tuf_targets = %v, want 2", n)
	}
	if h := m.Health(); len(h) != 0 {
		t.Errorf("Health = %+v, want none", h)
	}

	// After the next refresh, the files of the state before stay reachable
	// by their versioned names, for clients in the middle of an update.
	e.repo.AddTarget("c.bin", []byte("new"))
	e.repo.Publish()
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	for _, name := range []string{"2.targets.json", "3.targets.json", "2.snapshot.json"} {
		if _, err := m.Metadata(context.Background(), name); err != nil {
			t.Errorf("Metadata(%s) after a second refresh: %v", name, err)
		}
	}
}

func TestMirrorDelegations(t *testing.T) {
	e := newMirrorEnv(t)
	e.repo.Delegate("targets", "vendor", []string{"vendor/*", "vendor/*/*"}, false)
	e.repo.Delegate("vendor", "vendor/printers", []string{"vendor/printers/*"}, true)
	e.repo.AddTargetContent("vendor", "vendor/tool.bin", tuftest.Bytes("tool"), nil)
	e.repo.AddTargetContent("vendor/printers", "vendor/printers/fw.bin", tuftest.Bytes("firmware"), []byte(`{"model":"x"}`))
	e.repo.Publish()
	m := refreshed(t, e)
	got, err := m.Target(context.Background(), "vendor/printers/fw.bin")
	if err != nil {
		t.Fatalf("Target: %v", err)
	}
	if got.Role != "vendor/printers" || string(got.Custom) != `{"model":"x"}` {
		t.Errorf("Target = %+v", got)
	}
	if _, err := m.Target(context.Background(), "vendor/tool.bin"); err != nil {
		t.Errorf("Target(vendor/tool.bin): %v", err)
	}
	for _, name := range []string{"vendor.json", "1.vendor.json", "vendor/printers.json", "1.vendor/printers.json"} {
		if _, err := m.Metadata(context.Background(), name); err != nil {
			t.Errorf("Metadata(%s): %v", name, err)
		}
	}
	if diff := cmp.Diff([]string{"vendor/printers/fw.bin", "vendor/tool.bin"}, paths(m.Targets())); diff != "" {
		t.Errorf("Targets() (-want +got):\n%s", diff)
	}
}

func paths(ts []tuf.TargetInfo) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Path)
	}
	return out
}

func TestMirrorRestartOffline(t *testing.T) {
	e := newMirrorEnv(t)
	e.repo.AddTarget("a.bin", []byte("hello"))
	e.repo.Publish()
	e.repo.RotateKeys("timestamp") // root v2 must be served after restart too
	if err := e.mirror(t).Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	e.repo.Server().Close()

	m := e.mirror(t) // restart, upstream gone
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatalf("Refresh with upstream down succeeded")
	}
	if _, err := m.Target(context.Background(), "a.bin"); err != nil {
		t.Fatalf("Target after offline restart: %v", err)
	}
	if _, err := m.Metadata(context.Background(), "2.root.json"); err != nil {
		t.Errorf("Metadata(2.root.json) after restart: %v", err)
	}
	h := m.Health()
	if len(h) != 1 || h[0].Code != "tuf-refresh-failed" {
		t.Errorf("Health = %+v, want one tuf-refresh-failed", h)
	}

	// Past the timestamp's expiry the state is no longer served.
	e.clock.Set(time.Now().Add(48 * time.Hour))
	if _, err := m.Target(context.Background(), "a.bin"); !errors.Is(err, tuf.ErrExpired) {
		t.Errorf("Target after expiry: err = %v, want ErrExpired", err)
	}
	if _, err := m.Metadata(context.Background(), "timestamp.json"); !errors.Is(err, tuf.ErrExpired) {
		t.Errorf("Metadata(timestamp.json) after expiry: err = %v, want ErrExpired", err)
	}
	if _, err := m.Metadata(context.Background(), "2.root.json"); err != nil {
		t.Errorf("Metadata(2.root.json) after expiry: %v (root chain stays served)", err)
	}
	h = m.Health()
	if len(h) != 1 || h[0].Code != "tuf-metadata-expired" {
		t.Errorf("Health = %+v, want one tuf-metadata-expired", h)
	}
	if v := metricValue(t, e.reg, "patchgate_tuf_metadata_expired"); v != 1 {
		t.Errorf("patchgate_tuf_metadata_expired = %v, want 1", v)
	}
}

func TestMirrorOpenTarget(t *testing.T) {
	e := newMirrorEnv(t)
	e.repo.AddTarget("dir/a.bin", []byte("0123456789"))
	e.repo.Publish()
	m := refreshed(t, e)
	ti, err := m.Target(context.Background(), "dir/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		offset int64
		want   string
	}{
		{"whole", 0, "0123456789"},
		{"resume", 4, "456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := m.OpenTarget(context.Background(), ti, tc.offset)
			if err != nil {
				t.Fatalf("OpenTarget: %v", err)
			}
			defer body.Close()
			data, _ := io.ReadAll(body)
			if string(data) != tc.want || body.Offset != tc.offset {
				t.Errorf("OpenTarget(%d) = %q at %d, want %q at %d", tc.offset, data, body.Offset, tc.want, tc.offset)
			}
		})
	}
	// Consistent snapshots: the hash-prefixed name is what was fetched.
	if n := e.repo.Gets("/targets/dir/a.bin"); n != 0 {
		t.Errorf("plain name fetched %d times, want 0 with consistent snapshots", n)
	}
	if n := e.repo.TargetGets("dir/a.bin"); n != 2 {
		t.Errorf("TargetGets = %d, want 2", n)
	}
}

func TestMirrorWithoutConsistentSnapshot(t *testing.T) {
	e := newMirrorEnv(t, tuftest.WithoutConsistentSnapshot())
	e.repo.AddTarget("a.bin", []byte("plain"))
	e.repo.Publish()
	m := refreshed(t, e)
	ti, err := m.Target(context.Background(), "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, err := m.OpenTarget(context.Background(), ti, 0)
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if n := e.repo.Gets("/targets/a.bin"); n != 1 {
		t.Errorf("plain name GETs = %d, want 1", n)
	}
}

// metricValue returns the sum of a metric family's values in reg.
var metricValue = metrictest.Sum
