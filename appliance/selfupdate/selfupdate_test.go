package selfupdate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/selfupdate/selfupdatetest"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/image/abupdate/abupdatetest"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

const (
	uuidRunning = "11111111-1111-4111-8111-111111111111"
	uuidOld     = "22222222-2222-4222-8222-222222222222"
	prefix      = "appliance/"
	running     = "1.0"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type bundle = selfupdatetest.Bundle

func newBundle(t *testing.T, version, uuid string) bundle {
	return selfupdatetest.NewBundle(t, version, uuid)
}

func publish(t *testing.T, repo *tuftest.Repo, b bundle) { selfupdatetest.Publish(t, repo, prefix, b) }

// events records what the service reports for the audit trail.
type events struct {
	mu        sync.Mutex
	requested []Request
	finished  []Result
	fail      error
}

func (e *events) Requested(_ context.Context, r Request) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.requested = append(e.requested, r)
	return nil
}

func (e *events) Finished(_ context.Context, r Result) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finished = append(e.finished, r)
	return nil
}

// fixture is an appliance running 1.0 from slot A, with an older good 0.9 entry whose
// root was in slot B, a TUF repository publishing appliance versions, a mirror and a
// cache over it, and the daemon-side service.
type fixture struct {
	repo   *tuftest.Repo
	mirror *tuf.Mirror
	cache  *cache.Cache
	svc    *Service
	ev     *events
	clk    *clock.Fake
	dir    string // request directory
	esp    string
	slots  [2]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{repo: tuftest.New(t), ev: &events{}, clk: clock.NewFake(start)}
	base := t.TempDir()
	f.dir = filepath.Join(base, "selfupdate")
	f.esp, f.slots = selfupdatetest.Disk(t, base, uuidRunning, uuidOld)
	f.repo.AddTarget("other/firmware.bin", []byte("not an appliance version"))
	f.repo.Publish()

	log := slog.New(slog.DiscardHandler)
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "vendor", MetadataURL: f.repo.MetadataURL(), TargetsURL: f.repo.TargetsURL(),
		TrustedRoot: f.repo.Root(), StateDir: filepath.Join(base, "tuf")}, tuf.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	f.mirror = m
	f.cache, err = cache.New(cache.Config{Dir: filepath.Join(base, "cache")}, []*tuf.Mirror{m}, cache.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cache.Close() })
	f.svc, err = New(Config{Repo: "vendor", Prefix: prefix, ESP: f.esp, Dir: f.dir, Running: running},
		Options{Targets: m, Stager: f.cache, Events: f.ev, Clock: f.clk, Log: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// refresh publishes the repository and refreshes the mirror, then runs a check.
func (f *fixture) check(t *testing.T) {
	t.Helper()
	f.repo.Publish()
	if err := f.mirror.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.svc.check(context.Background())
}

func (f *fixture) applyConfig(t *testing.T) ApplyConfig {
	t.Helper()
	return ApplyConfig{Dir: f.dir, Repo: "vendor", Prefix: prefix, MetadataURL: f.repo.MetadataURL(), TargetsURL: f.repo.TargetsURL(),
		TrustedRoot: f.repo.Root(), CacheDir: filepath.Join(filepath.Dir(f.dir), "cache"),
		Updater: &abupdate.Updater{ESP: f.esp, Slots: f.slots, RunningRoot: uuidRunning, Log: slog.New(slog.DiscardHandler)},
		Running: running, Now: f.clk.Now, Log: slog.New(slog.DiscardHandler)}
}

func (f *fixture) entries(t *testing.T) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(f.esp, "EFI/Linux"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestInstallNewestPublishedVersion goes the whole way: the service finds the newest
// valid version above the running one (ignoring an older one and one whose manifest
// does not match its files), stages it in the cache, turns an admin's install into a
// request; the installer verifies it against TUF itself and writes the other slot and a
// counting boot entry; the service records the result.
func TestInstallNewestPublishedVersion(t *testing.T) {
	f := newFixture(t)
	older, v11, v12 := newBundle(t, "0.8", uuidOld), newBundle(t, "1.1", "33333333-3333-4333-8333-333333333333"),
		newBundle(t, "1.2", "44444444-4444-4444-8444-444444444444")
	broken := newBundle(t, "1.3", "55555555-5555-4555-8555-555555555555")
	broken.Manifest.UKI.Length++ // the listed UKI is not the one the manifest describes
	for _, b := range []bundle{older, v11, v12, broken} {
		publish(t, f.repo, b)
	}
	ctx := context.Background()
	if _, err := f.svc.Install(ctx, "alice", "1.2", true); !errors.Is(err, ErrRefused) {
		t.Fatalf("install before anything is staged: %v, want ErrRefused", err)
	}
	f.check(t)

	st := f.svc.Status()
	if st.Available == nil || st.Available.Version != "1.2" || !st.Staged {
		t.Fatalf("after a check: available %+v staged %v, want 1.2 staged", st.Available, st.Staged)
	}
	if len(st.Published) != 1 || !strings.Contains(st.Published[0], "1.3") {
		t.Errorf("problems with published versions: %q, want one about 1.3", st.Published)
	}
	if st.RollbackTo != "0.9" {
		t.Errorf("rollback target %q, want 0.9", st.RollbackTo)
	}
	staged := map[string]bool{}
	for _, o := range f.cache.Objects() {
		staged[o.Key] = true
	}
	for _, s := range []string{v12.Manifest.Root.SHA256, v12.Manifest.UKI.SHA256} {
		if !staged[s] {
			t.Errorf("object %s of 1.2 is not in the cache", s)
		}
	}

	if _, err := f.svc.Install(ctx, "alice", "1.1", true); !errors.Is(err, ErrRefused) {
		t.Errorf("install of 1.1 while 1.2 is staged: %v, want ErrRefused", err)
	}
	req, err := f.svc.Install(ctx, "alice", "1.2", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Rollback(ctx, "bob", false); !errors.Is(err, ErrRefused) {
		t.Errorf("a second request while one waits: %v, want ErrRefused", err)
	}
	if len(f.ev.requested) != 1 || f.ev.requested[0].ID != req.ID || f.ev.requested[0].RequestedBy != "alice" {
		t.Errorf("requests recorded: %+v", f.ev.requested)
	}
	if st := f.svc.Status(); st.Request == nil || st.Request.Version != "1.2" || st.Applying {
		t.Errorf("status after the request: request %+v applying %v", st.Request, st.Applying)
	}

	res, err := Apply(ctx, f.applyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.ID != req.ID || res.Version != "1.2" || !res.Reboot || res.RequestedBy != "alice" {
		t.Fatalf("result %+v", res)
	}
	if got, want := f.entries(t), []string{"patchgate_1.0.efi", "patchgate_1.2+3-0.efi"}; !equal(got, want) {
		t.Errorf("ESP holds %q, want %q (0.9's slot was overwritten)", got, want)
	}
	slotB, _ := os.ReadFile(f.slots[1])
	if id, _ := abupdate.FSUUID(f.slots[1]); id != v12.UUID || !bytes.Equal(slotB[:len(abupdatetest.Root(v12.UUID))], abupdatetest.Root(v12.UUID)) {
		t.Errorf("slot B holds root %s, want 1.2's %s", id, v12.UUID)
	}
	if _, err := Apply(ctx, f.applyConfig(t)); !errors.Is(err, ErrNoRequest) {
		t.Errorf("a second Apply: %v, want ErrNoRequest", err)
	}

	f.svc.collect(ctx)
	f.svc.collect(ctx) // recorded once
	if len(f.ev.finished) != 1 || f.ev.finished[0].ID != req.ID || !f.ev.finished[0].OK {
		t.Errorf("results recorded: %+v", f.ev.finished)
	}
	st = f.svc.Status()
	if st.Request != nil || st.Last == nil || st.Last.ID != req.ID {
		t.Errorf("status after the install: request %+v last %+v", st.Request, st.Last)
	}
	var pending []string
	for _, e := range st.Entries {
		if e.State == string(abupdate.Pending) {
			pending = append(pending, e.Version)
		}
	}
	if !equal(pending, []string{"1.2"}) {
		t.Errorf("pending versions %q, want [1.2]", pending)
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// TestApplyRefuses: the installer verifies for itself, so a daemon that lies (about the
// bytes it staged, the version, or the request) gets a failed result and no new boot
// entry.
func TestApplyRefuses(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, cfg *ApplyConfig)
		want    string
	}{
		{"tampered staged root", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			tamper(t, cfg.CacheDir, newBundle(t, "1.2", uuid12).Manifest.Root.SHA256)
		}, "root: gzip: invalid checksum"},
		{"tampered staged UKI", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			tamper(t, cfg.CacheDir, newBundle(t, "1.2", uuid12).Manifest.UKI.SHA256)
		}, "sha256"},
		{"staged files gone", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			os.RemoveAll(cfg.CacheDir)
		}, "not staged"},
		{"another repository's root", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			cfg.TrustedRoot = tuftest.New(t).Root()
		}, "install 1.2: tuf"},
		{"not newer than running", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			cfg.Running = "1.2"
		}, "not newer"},
		{"version not published", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			f.repo.RemoveTarget("targets", ManifestPath(prefix, "1.2"))
			f.repo.Publish()
		}, "not found"},
		{"request is a symbolic link", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			p := filepath.Join(f.dir, RequestFile)
			os.Rename(p, p+".orig")
			if err := os.Symlink(p+".orig", p); err != nil {
				t.Fatal(err)
			}
		}, "too many levels of symbolic links"},
		{"request edited", func(t *testing.T, f *fixture, cfg *ApplyConfig) {
			p := filepath.Join(f.dir, RequestFile)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(data, []byte(`"1.2"`), []byte(`"../1.2"`), 1), 0o600)
		}, "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			publish(t, f.repo, newBundle(t, "1.2", uuid12))
			f.check(t)
			if _, err := f.svc.Install(context.Background(), "alice", "1.2", true); err != nil {
				t.Fatal(err)
			}
			cfg := f.applyConfig(t)
			tc.prepare(t, f, &cfg)
			res, err := Apply(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.Reboot || !strings.Contains(res.Error, tc.want) {
				t.Errorf("result %+v, want failed with %q", res, tc.want)
			}
			// The entry of the slot being overwritten may be gone; the running one stays,
			// and nothing boots 1.2.
			got := f.entries(t)
			if !slices.Contains(got, "patchgate_1.0.efi") || slices.ContainsFunc(got, func(n string) bool { return strings.Contains(n, "1.2") }) {
				t.Errorf("ESP holds %q, want patchgate_1.0.efi and no entry for 1.2", got)
			}
			f.svc.collect(context.Background())
			if len(f.ev.finished) != 1 || f.ev.finished[0].OK {
				t.Errorf("results recorded: %+v", f.ev.finished)
			}
			if !hasProblem(f.svc, "selfupdate-failed") {
				t.Errorf("health %+v, want selfupdate-failed", f.svc.Health())
			}
		})
	}
}

// tamper flips a bit in the middle of the cache's object key in dir.
func tamper(t *testing.T, dir, key string) {
	t.Helper()
	p, err := cache.ObjectFile(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

const uuid12 = "44444444-4444-4444-8444-444444444444"

func hasProblem(s *Service, code string) bool {
	for _, p := range s.Health() {
		if p.Code == code {
			return true
		}
	}
	return false
}

// TestRollback: an admin's rollback marks the running version bad, so the previous good
// one boots next; with nothing to go back to it is refused.
func TestRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, err := f.svc.Rollback(ctx, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, f.applyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.ID != req.ID || res.Version != "0.9" || !res.Reboot {
		t.Fatalf("result %+v, want rolled back to 0.9 with a reboot", res)
	}
	if got, want := f.entries(t), []string{"patchgate_0.9.efi", "patchgate_1.0+0-0.efi"}; !equal(got, want) {
		t.Errorf("ESP holds %q, want %q", got, want)
	}
	f.svc.collect(ctx)
	if st := f.svc.Status(); st.RollbackTo != "0.9" {
		// 1.0 is bad now; 0.9 is the only good entry left and it is not running.
		t.Errorf("rollback target after the rollback: %q", st.RollbackTo)
	}

	os.Remove(filepath.Join(f.esp, "EFI/Linux/patchgate_0.9.efi"))
	if _, err := f.svc.Rollback(ctx, "alice", true); !errors.Is(err, ErrRefused) {
		t.Errorf("rollback with no other good version: %v, want ErrRefused", err)
	}
}

// TestRequestNotRecordedNotWritten: an audit trail that refuses the record refuses the
// request.
func TestRequestNotRecordedNotWritten(t *testing.T) {
	f := newFixture(t)
	f.ev.fail = errors.New("audit trail refuses writes")
	if _, err := f.svc.Rollback(context.Background(), "alice", false); err == nil || !strings.Contains(err.Error(), "not recorded") {
		t.Fatalf("rollback with a broken audit trail: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, RequestFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("request file: %v, want none", err)
	}
}

// TestRunChecksAndCollects runs the service on the fake clock: it stages at start, picks
// up a version published later at the next interval, and records results as they come.
func TestRunChecksAndCollects(t *testing.T) {
	f := newFixture(t)
	publish(t, f.repo, newBundle(t, "1.1", "33333333-3333-4333-8333-333333333333"))
	f.repo.Publish()
	if err := f.mirror.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clocktest.Run(t, f.svc.Run)
	waitFor(t, f, "1.1")
	publish(t, f.repo, newBundle(t, "1.2", uuid12))
	f.repo.Publish()
	if err := f.mirror.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour) // the next check is due
	waitFor(t, f, "1.2")
	if err := writeFile(f.dir, ResultFile, Result{ID: newID(), Action: ActionRollback, Version: "0.9", OK: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.clk.Advance(resultPoll)
		f.ev.mu.Lock()
		n := len(f.ev.finished)
		f.ev.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the result was never recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFor(t *testing.T, f *fixture, version string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := f.svc.Status(); st.Available != nil && st.Available.Version == version && st.Staged {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never staged; status %+v", version, f.svc.Status())
		}
		f.clk.Advance(resultPoll) // a tick the service may have missed while busy
		time.Sleep(5 * time.Millisecond)
	}
}
