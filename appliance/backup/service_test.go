package backup

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patchgate/patchgate/health"
)

func newService(t *testing.T, f *fixture, cfg Config) (*Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.Recipients == nil {
		cfg.Recipients = []age.Recipient{f.id.Recipient()}
	}
	svc, err := New(cfg, Options{Sources: f.src, StatusDir: filepath.Join(f.src.StateDir, "backup"), Version: "v1",
		Clock: f.clock, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return svc, reg
}

func codes(ps []health.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

// TestScheduleKeepAndHealth runs the schedule on a fake clock: a backup at start, one
// per interval, the directory pruned to Keep; a failing target raises backup-failed,
// and two intervals without success backup-missing.
func TestScheduleKeepAndHealth(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "backups")
	target := LocalTarget{Dir: dir}
	svc, reg := newService(t, f, Config{Interval: time.Hour, Keep: 2, Targets: []Target{target}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	successes := func(n int) func() bool {
		return func() bool {
			st := svc.Status()
			return st.Last != nil && st.Last.OK && st.LastSuccess.Equal(t0.Add(time.Duration(n-1)*time.Hour))
		}
	}
	waitFor("the first backup", successes(1))
	for n := 2; n <= 3; n++ {
		waitFor("the schedule to wait", func() bool { return f.clock.Waiters() > 0 })
		f.clock.Advance(time.Hour)
		waitFor("backup "+itoa(n), successes(n))
	}
	names, _ := target.List()
	if len(names) != 2 || names[1] != "patchgate-backup-20260302T120000Z.tar.gz.age" {
		t.Errorf("archives kept: %v, want the 2 newest", names)
	}
	if got := testutil.ToFloat64(svc.met.lastSuccess); got != float64(t0.Add(2*time.Hour).Unix()) {
		t.Errorf("last success metric %v", got)
	}
	if ps := svc.Health(); len(ps) != 0 {
		t.Errorf("health after good backups: %v", ps)
	}

	// The target breaks: the next scheduled backup fails.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a file where the directory was")
	waitFor("the schedule to wait", func() bool { return f.clock.Waiters() > 0 })
	f.clock.Advance(time.Hour)
	waitFor("the failure", func() bool { st := svc.Status(); return st.Last != nil && !st.Last.OK })
	if got := codes(svc.Health()); !slices.Equal(got, []string{"backup-failed"}) {
		t.Errorf("health after a failed backup: %v, want backup-failed", got)
	}
	if got := testutil.ToFloat64(svc.met.failures); got != 1 {
		t.Errorf("failures metric %v, want 1", got)
	}
	waitFor("the retry to wait", func() bool { return f.clock.Waiters() > 0 })
	f.clock.Advance(2 * time.Hour) // two intervals since the last success
	waitFor("the retries to fail", func() bool { return testutil.ToFloat64(svc.met.failures) >= 2 })
	if got := codes(svc.Health()); !slices.Contains(got, "backup-missing") {
		t.Errorf("health two intervals after the last success: %v, want backup-missing", got)
	}
	if n, err := testutil.GatherAndCount(reg, "patchgate_backup_last_success_timestamp_seconds", "patchgate_backup_failures_total"); err != nil || n != 2 {
		t.Errorf("metrics: %d %v", n, err)
	}
	// The status survives a restart.
	svc2, _ := newService(t, f, Config{Interval: time.Hour, Keep: 2, Targets: []Target{target}})
	if st := svc2.Status(); st.Last == nil || st.Last.OK || !st.LastSuccess.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("status after a restart: %+v", st)
	}
}

func TestStatusShowsDrill(t *testing.T) {
	f := newFixture(t)
	svc, _ := newService(t, f, Config{Keep: 1, Targets: []Target{LocalTarget{Dir: t.TempDir()}}})
	if st := svc.Status(); st.Drill != nil || !st.Enabled || st.Interval != 0 {
		t.Fatalf("status before a drill: %+v", st)
	}
	d := DrillResult{Time: t0, Archive: "a", OK: true, Tables: 3, Rows: 9, AuditRecords: 7}
	if err := SaveDrill(filepath.Join(f.src.StateDir, "backup"), d); err != nil {
		t.Fatal(err)
	}
	if st := svc.Status(); st.Drill == nil || *st.Drill != d {
		t.Errorf("status drill %+v, want %+v", st.Drill, d)
	}
	if ps := svc.Health(); ps != nil {
		t.Errorf("health without a schedule: %v", ps)
	}
}

// TestS3Target backs up to gofakes3, a fake S3 server (in memory, on loopback): the
// archives appear under the prefix, are pruned to Keep, and one read back restores.
// No real S3 service is tested.
func TestS3Target(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	s3 := &S3Target{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: "backups", Prefix: "site-a/",
		AccessKey: "ak", SecretKey: "sk", Insecure: true, Region: "us-east-1"}
	f := newFixture(t)
	svc, _ := newService(t, f, Config{Keep: 2, Targets: []Target{s3}})
	ctx := context.Background()
	for range 3 {
		if r, err := svc.Backup(ctx); err != nil || !r.OK || len(r.Targets) != 1 {
			t.Fatalf("Backup: %+v %v", r, err)
		}
		f.clock.Advance(time.Hour)
	}
	names, err := s3.List(ctx)
	if err != nil || len(names) != 2 || names[0] != "patchgate-backup-20260302T110000Z.tar.gz.age" {
		t.Fatalf("objects: %v %v, want the 2 newest", names, err)
	}
	rc, err := s3.Get(ctx, names[1])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := Restore(ctx, rc, []age.Identity{f.id}, RestoreOptions{StateDir: filepath.Join(t.TempDir(), "state"), Known: f.known(t), Clock: f.clock}); err != nil {
		t.Fatalf("Restore from S3: %v", err)
	}

	// An endpoint that fails: a clear error naming the target, nothing kept locally.
	srv.Close()
	r, err := svc.Backup(ctx)
	if err == nil || r.OK || !strings.Contains(err.Error(), "s3:") {
		t.Fatalf("Backup to a dead endpoint: %+v %v, want an error naming the s3 target", r, err)
	}
	if left, _ := os.ReadDir(f.src.WorkDir); len(left) > 1 { // the fixture's leftover
		t.Errorf("work files left: %v", left)
	}
}

// TestS3FailsMidUpload: an S3 endpoint that takes the upload and then fails it: a clear
// error naming the target, no archive in the bucket, the health says so.
func TestS3FailsMidUpload(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.CopyN(io.Discard, r.Body, 512) // part of the body, then the connection drops
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("no hijacker")
				return
			}
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s3 := &S3Target{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: "backups", AccessKey: "ak", SecretKey: "sk", Insecure: true,
		Region: "us-east-1"}
	f := newFixture(t)
	svc, _ := newService(t, f, Config{Keep: 2, Targets: []Target{s3}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := svc.Backup(ctx)
	if err == nil || r.OK || !strings.Contains(err.Error(), "s3:") {
		t.Fatalf("Backup = %+v %v, want an error naming the s3 target", r, err)
	}
	if names, err := s3.List(ctx); err != nil || len(names) != 0 {
		t.Errorf("bucket holds %v (%v) after a failed upload, want nothing", names, err)
	}
}

// TestFullDisk: the work directory's filesystem fills up while the archive is written:
// a clear error, no archive at the target, no work files left. Needs root (a small
// tmpfs is mounted for the test).
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	f := newFixture(t)
	work := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", work).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", work).Run() })
	write(t, filepath.Join(f.src.StateDir, "big.bin"), strings.Repeat("incompressible? no, but big enough ", 1<<14))
	rnd := make([]byte, 256<<10)
	rand.Read(rnd)
	if err := os.WriteFile(filepath.Join(f.src.StateDir, "random.bin"), rnd, 0o600); err != nil {
		t.Fatal(err)
	}
	f.src.WorkDir = work
	target := LocalTarget{Dir: filepath.Join(t.TempDir(), "backups")}
	svc, _ := newService(t, f, Config{Keep: 2, Targets: []Target{target}})
	r, err := svc.Backup(context.Background())
	if err == nil || r.OK || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Backup on a full disk = %+v %v, want no space left on device", r, err)
	}
	if names, _ := target.List(); len(names) != 0 {
		t.Errorf("target holds %v after a failed backup", names)
	}
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("work files left on the full disk: %v", left)
	}
}
