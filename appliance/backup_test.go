package appliance

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/backup"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/conf"
)

// backupConfig is testConfig with a local backup target, encrypted to a new identity.
func backupConfig(t *testing.T) (*config.Config, *age.X25519Identity) {
	t.Helper()
	cfg := testConfig(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backup.Recipients = []string{id.Recipient().String()}
	cfg.Backup.Local.Dir = filepath.Join(t.TempDir(), "backups")
	return cfg, id
}

func backupService(t *testing.T, sys *System) *backup.Service {
	t.Helper()
	for _, svc := range sys.services {
		if s, ok := svc.(*backup.Service); ok {
			return s
		}
	}
	t.Fatal("no backup service")
	return nil
}

// TestRestoreDrill is the restore drill (make restore-drill): an appliance with users,
// a rollout, an exception and their audit records is backed up by its backup service,
// the archive is restored into a fresh state directory, every table is compared row by
// row with the original and the restored audit trail verifies, ending with the restore.
func TestRestoreDrill(t *testing.T) {
	ctx := context.Background()
	cfg, id := backupConfig(t)
	sys, err := New(ctx, cfg, Options{Build: Build{Version: "drill"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })

	admin := &auth.Principal{User: "ada", Roles: []auth.Role{auth.Admin}, Method: "password+totp", Source: "127.0.0.1"}
	for _, u := range []struct {
		name  string
		roles []auth.Role
	}{{"ada", []auth.Role{auth.Admin}}, {"rita", []auth.Role{auth.Requester}}, {"anna", []auth.Role{auth.Approver}}} {
		if err := sys.auth.CreateUser(ctx, admin, u.name, "correct horse battery staple", u.roles); err != nil {
			t.Fatal(err)
		}
	}
	e := sys.rollout
	helloRollout(t, e, true)
	if _, err := e.RequestException(ctx, "rita", rollout.Exception{Ring: "pilot", Release: "hello 1", Reason: "the robot vendor must certify it first",
		Controls: "the robot's segment has no internet access", ExpiresAt: time.Now().Add(30 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tables, err := backup.Tables(ctx, sys.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]string{}
	for _, tb := range tables {
		if before[tb], err = backup.TableRows(ctx, sys.DB().DB, tb); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range []string{"auth_users", "auth_exceptions", "rollouts", "rollout_approvals", "audit_records"} {
		if len(before[tb]) == 0 {
			t.Errorf("the drill's appliance has no rows in %s (tables: %v)", tb, tables)
		}
	}

	res, err := backupService(t, sys).Backup(ctx)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	archive := filepath.Join(cfg.Backup.Local.Dir, res.Archive)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known, err := KnownSchemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "state")
	if _, err := backup.Restore(ctx, f, []age.Identity{id}, backup.RestoreOptions{StateDir: fresh, Known: known, Archive: archive}); err != nil {
		t.Fatalf("Restore: %v", err)
	}

	db, err := store.Open(ctx, filepath.Join(fresh, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	restored, err := backup.Tables(ctx, db.DB)
	if err != nil || !slices.Equal(restored, tables) {
		t.Fatalf("restored tables %v (%v), want %v", restored, err, tables)
	}
	for _, tb := range tables {
		got, err := backup.TableRows(ctx, db.DB, tb)
		if err != nil {
			t.Fatal(err)
		}
		want := before[tb]
		switch tb {
		case "audit_records": // the restore is the one record more
			if n := len(got); n != len(want)+1 || !strings.Contains(got[n-1], `"appliance.restore"`) {
				t.Errorf("restored audit_records end with %q, want one appliance.restore after the original %d", got[len(got)-1], len(want))
			}
			got = got[:min(len(got), len(want))]
		case "audit_checkpoints": // closing the restored trail signs one more
			got = slices.DeleteFunc(got, func(r string) bool { return !slices.Contains(want, r) })
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("table %s differs after restore (-original +restored):\n%s", tb, diff)
		}
	}
	rep, err := audit.Verify(ctx, db.DB, filepath.Join(fresh, "audit"), audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("audit verify of the restored appliance: %v %v", rep, err)
	}
	t.Logf("drill: %d tables, audit %s", len(tables), rep)
}

// TestBackupPanelAndAudit: a backup by the running daemon is in the audit trail and on
// the status page, and a configured schedule makes the first backup at start.
func TestBackupPanelAndAudit(t *testing.T) {
	ctx := context.Background()
	cfg, _ := backupConfig(t)
	cfg.Backup.Interval = conf.Duration(24 * time.Hour)
	sys, _, _ := startSystemWith(t, cfg)
	svc := backupService(t, sys)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st := svc.Status(); st.Last != nil {
			if !st.Last.OK {
				t.Fatalf("scheduled backup at start failed: %s", st.Last.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no backup at start")
		}
	}
	recs, err := sys.audit.Records(ctx, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Action == "appliance.backup.ok" && r.Actor == "system:backup" }) {
		t.Error("no appliance.backup.ok record in the audit trail")
	}
	code, page := getWith(t, "http://"+sys.AdminAddr()+"/", "")
	if code != http.StatusOK || !strings.Contains(page, "patchgate-backup-") || strings.Contains(page, "could not be drawn") {
		t.Errorf("status page (%d) lacks a drawn backup panel", code)
	}
}
