package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/store"
)

func TestAuditVerifyAndExport(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "patchgate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("state:\n  dir: %s\nauth:\n  tls:\n    mode: \"off\"\n", dir)), 0o600)
	seedAuditTrail(t, dir, 4)
	if out, errs, code := run(t, "audit", "verify", "--config", cfgPath); code != 0 || !strings.Contains(out, "ok: 4 records") {
		t.Fatalf("verify = %q %q, exit %d", out, errs, code)
	}
	if out, errs, code := run(t, "audit", "export", "--config", cfgPath, "--format", "csv"); code != 0 || strings.Count(out, "user.create") != 4 {
		t.Fatalf("export = %q %q, exit %d", out, errs, code)
	}
	path := filepath.Join(dir, "audit", audit.RecordsFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("user/u2"), []byte("user/u9"), 1), 0o600)
	if out, errs, code := run(t, "audit", "verify", "--config", cfgPath); code != 2 || !strings.Contains(out, "record 3") {
		t.Fatalf("verify after tampering = %q %q, exit %d; want exit 2 naming record 3", out, errs, code)
	}
}

// seedAuditTrail makes the database and audit trail of the state directory state, with
// records user.create entries by alice.
func seedAuditTrail(t *testing.T, state string, records int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(state, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(state, "audit")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range records {
		if err := l.Record(ctx, audit.Entry{Actor: "alice", Action: "user.create", Object: fmt.Sprintf("user/u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}
