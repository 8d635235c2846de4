package appliance

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/appliance/selfupdate/selfupdatetest"
	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestSelfUpdateThroughTheDaemon runs the daemon running 1.0 with a repository that
// publishes 1.1: the version is staged and shown, an admin's install is audited and
// handed to the installer, and the installer, fetching the metadata from the daemon's
// own distribution listener and the files from its cache, verifies and installs it; the
// daemon then records the result.
func TestSelfUpdateThroughTheDaemon(t *testing.T) {
	const uuidRunning, uuidOld, uuid11 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
	repo := tuftest.New(t)
	selfupdatetest.Publish(t, repo, "appliance/", selfupdatetest.NewBundle(t, "1.1", uuid11))
	repo.Publish()
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "vendor.root.json")
	writeFile(t, rootFile, repo.Root())
	esp, slots := selfupdatetest.Disk(t, dir, uuidRunning, uuidOld)

	cfg := testConfig(t)
	cfg.TUF.Repositories = append(cfg.TUF.Repositories, tuf.Repository{Name: "vendor", MetadataURL: repo.MetadataURL(),
		TargetsURL: repo.TargetsURL(), Root: rootFile})
	cfg.SelfUpdate.Repository, cfg.SelfUpdate.ESP = "vendor", esp
	sys := newSystem(t, cfg, Options{Build: Build{Version: "1.0"}})
	runSystem(t, sys)
	ctx := context.Background()
	status := func() selfupdate.Status { return panelData[selfupdate.Status](t, sys, "selfupdate") }
	waitUntil(t, "1.1 to be staged", 30*time.Second, func() bool {
		st := status()
		return st.Available != nil && st.Staged
	})

	ada := &auth.Principal{User: "ada", Roles: []auth.Role{auth.Admin}, Method: "password+totp", Source: "127.0.0.1"}
	svc, ok := serviceOf[*selfupdate.Service](sys)
	if !ok {
		t.Fatal("no selfupdate service")
	}
	if err := (authAppliance{svc}).Install(auth.WithPrincipal(ctx, ada), "ada", "1.1", true); err != nil {
		t.Fatal(err)
	}
	recs, err := sys.audit.Records(ctx, audit.Query{Action: "appliance.install.request"})
	if err != nil || len(recs) != 1 || recs[0].Actor != "ada" || recs[0].AuthMethod != "password+totp" || recs[0].Object != "appliance/1.1" {
		t.Fatalf("audit records of the request: %+v, %v", recs, err)
	}

	base := "http://" + sys.DistributionAddr() + "/repos/vendor/"
	res, err := selfupdate.Apply(ctx, selfupdate.ApplyConfig{Dir: cfg.State.Path("selfupdate"), Repo: "vendor", Prefix: "appliance/",
		MetadataURL: base + "metadata", TargetsURL: base + "targets", TrustedRoot: repo.Root(), CacheDir: cfg.State.Path("cache"),
		Updater: &abupdate.Updater{ESP: esp, Slots: slots, RunningRoot: uuidRunning}, Running: "1.0", Log: slog.New(slog.DiscardHandler)})
	if err != nil || !res.OK {
		t.Fatalf("Apply: %+v, %v", res, err)
	}
	if id, _ := abupdate.FSUUID(slots[1]); id != uuid11 {
		t.Errorf("slot B holds root %s, want 1.1's", id)
	}
	// The daemon looks for results every 10s.
	waitUntil(t, "the installer's result in the audit trail", 30*time.Second, func() bool {
		recs, err := sys.audit.Records(ctx, audit.Query{Action: "appliance.install.ok"})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs) == 1 && recs[0].Actor == "system:installer" && recs[0].Object == "appliance/1.1"
	})
	st := status()
	if st.Last == nil || !st.Last.OK || len(st.Entries) != 2 || st.Entries[0].Version != "1.1" || st.Entries[0].State != "pending" {
		t.Errorf("status after the install: last %+v entries %+v", st.Last, st.Entries)
	}
}
