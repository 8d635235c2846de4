package appliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/conf"
)

// calls records the Reloaders called, in order.
type calls struct {
	mu    sync.Mutex
	names []string
}

func (c *calls) reloader(name string, err error) Reloader {
	return reloadFunc(func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.names = append(c.names, name)
		return err
	})
}

func (c *calls) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.names)
}

// reloadRecords returns the audit trail's config.reload records.
func reloadRecords(t *testing.T, sys *System) []audit.Record {
	t.Helper()
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "config.reload"})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// waitRecords waits until the trail has n config.reload records.
func waitRecords(t *testing.T, sys *System, n int) []audit.Record {
	t.Helper()
	var recs []audit.Record
	waitUntil(t, strconv.Itoa(n)+" config.reload records", 5*time.Second, func() bool {
		recs = reloadRecords(t, sys)
		return len(recs) >= n
	})
	return recs
}

// TestReloadHandler sends signals on a fake channel: every Reloader is called in order,
// also after one fails, and each reload is one audit record naming the failed services.
func TestReloadHandler(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "patchgate.yaml")
	if err := os.WriteFile(path, []byte("# first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Resolver.Enabled = false
	sys := newSystem(t, cfg, Options{ConfigPath: path})
	var got calls
	sys.reloaders = nil
	sys.AddReloader("first", got.reloader("first", nil))
	sys.AddReloader("broken", got.reloader("broken", errors.New("broken: reload: bad")))
	sys.AddReloader("last", got.reloader("last", nil))

	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() { defer close(done); sys.handleReloads(ctx, hup) }()
	defer func() { cancel(); <-done }()

	hup <- syscall.SIGHUP
	recs := waitRecords(t, sys, 1)
	if diff := cmp.Diff([]string{"first", "broken", "last"}, got.get()); diff != "" {
		t.Errorf("reloaders called (-want +got):\n%s", diff)
	}
	if d := recs[0].Details; d["failed"] != "broken" || d["changed"] != "false" || d["config"] != path {
		t.Errorf("first reload's details = %v, want failed=broken changed=false config=%s", d, path)
	}

	if err := os.WriteFile(path, []byte("# second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	recs = waitRecords(t, sys, 2)
	if r := recs[1]; r.Details["changed"] != "true" || r.Before == r.After || r.Before != recs[0].After {
		t.Errorf("second reload = before %s after %s details %v; want changed from the first's after %s", r.Before, r.After, r.Details, recs[0].After)
	}
	if n := len(got.get()); n != 6 {
		t.Errorf("%d reloader calls after two signals, want 6", n)
	}
}

// TestSIGHUPReloadsResolverLists sends the process a real SIGHUP while the System runs:
// the resolver takes up its changed list file (its own polling is an hour away) and the
// reload is in the audit trail.
func TestSIGHUPReloadsResolverLists(t *testing.T) {
	cfg := testConfig(t)
	cfg.Resolver.ReloadInterval = conf.Duration(time.Hour)
	cfg.Resolver.Upstreams = []resolver.Upstream{{Address: "127.0.0.1:9", Protocol: "udp"}}
	dir := t.TempDir()
	files := writeListFiles(t, cfg, dir, "update.microsoft.com\n")
	sys := newSystem(t, cfg, Options{ConfigPath: filepath.Join(dir, "patchgate.yaml")})
	runSystem(t, sys)
	waitReady(t, sys)
	entries := func() int {
		n := 0
		for _, l := range sys.resolver.Status(0, 0).Lists {
			n += l.Entries
		}
		return n
	}
	before := entries()

	writeListFiles(t, cfg, dir, "update.microsoft.com\nupdate.vendor.example\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	recs := waitRecords(t, sys, 1)
	if got, want := entries(), before+len(files); got != want {
		t.Errorf("list entries after SIGHUP = %d, want %d", got, want)
	}
	if f := recs[0].Details["failed"]; f != "" {
		t.Errorf("reload failed for %s", f)
	}
}

// TestUnitReloadsWithSIGHUP: `systemctl reload patchgate` reaches the one SIGHUP handler
// (notifyReload) through the unit's ExecReload.
func TestUnitReloadsWithSIGHUP(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "configs", "systemd", "patchgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(b), "\n"), "ExecReload=/bin/kill -HUP $MAINPID") {
		t.Error("configs/systemd/patchgate.service has no `ExecReload=/bin/kill -HUP $MAINPID`: systemctl reload would fail")
	}
}
