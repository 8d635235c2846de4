package main

import (
	"bytes"
	"context"
	"errors"
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
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := l.Record(ctx, audit.Entry{Actor: "alice", Action: "user.create", Object: fmt.Sprintf("user/u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	db.Close()

	run := func(args ...string) (string, error) {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	if out, err := run("audit", "verify", "--config", cfgPath); err != nil || !strings.Contains(out, "ok: 4 records") {
		t.Fatalf("verify = %q, %v", out, err)
	}
	if out, err := run("audit", "export", "--config", cfgPath, "--format", "csv"); err != nil || strings.Count(out, "user.create") != 4 {
		t.Fatalf("export = %q, %v", out, err)
	}
	path := filepath.Join(dir, "audit", audit.RecordsFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("user/u2"), []byte("user/u9"), 1), 0o600)
	out, err := run("audit", "verify", "--config", cfgPath)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(out, "record 3") {
		t.Fatalf("verify after tampering = %q, %v; want exit 2 naming record 3", out, err)
	}
}
