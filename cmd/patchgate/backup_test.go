package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/patchgate/patchgate/appliance/backup"
)

// TestBackupRestoreDrillCommands: patchgate backup writes an archive to the local
// target; restore puts it into a fresh state directory and refuses an occupied one or a
// wrong identity; backup drill verifies the newest archive and leaves the result for the
// status page.
func TestBackupRestoreDrillCommands(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	idFile, otherFile := filepath.Join(dir, "key.txt"), filepath.Join(dir, "other.txt")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "patchgate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("state:\n  dir: %s\nauth:\n  tls:\n    mode: \"off\"\nbackup:\n  recipients: [%s]\n  local:\n    dir: %s\n",
		state, id.Recipient(), filepath.Join(dir, "backups"))), 0o600)
	seedAuditTrail(t, state, 3)

	if out, errs, code := run(t, "backup", "--config", cfgPath); code != 0 || !strings.Contains(out, "patchgate-backup-") {
		t.Fatalf("backup = %q %q, exit %d", out, errs, code)
	}
	names, _ := backup.LocalTarget{Dir: filepath.Join(dir, "backups")}.List()
	if len(names) != 1 {
		t.Fatalf("archives: %v", names)
	}
	archive := filepath.Join(dir, "backups", names[0])

	fresh := filepath.Join(dir, "fresh")
	tests := []struct {
		name string
		args []string
		want string // in the output or error
		ok   bool
	}{
		{"wrong identity", []string{"restore", "--identity", otherFile, "--state", fresh, archive}, "no identity can decrypt", false},
		{"identity is not a key", []string{"restore", "--identity", cfgPath, "--state", fresh, archive}, "want an age identity file", false},
		{"restore", []string{"restore", "--identity", idFile, "--state", fresh, "--config-out", filepath.Join(dir, "restored.yaml"), archive}, "3 audit records", true},
		{"again onto the restored state", []string{"restore", "--identity", idFile, "--state", fresh, archive}, "state directory is not empty", false},
		{"drill", []string{"backup", "drill", "--config", cfgPath, "--identity", idFile}, "restored and verified", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, tc.args...)
			if (code == 0) != tc.ok || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("%v = %q %q, exit %d; want ok=%v saying %q", tc.args, out, errs, code, tc.ok, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "restored.yaml")); err != nil {
		t.Errorf("config not written: %v", err)
	}
	d, err := backup.ReadDrill(filepath.Join(state, "backup"))
	if err != nil || d == nil || !d.OK {
		t.Errorf("drill result for the status page: %+v %v", d, err)
	}
	// A failed drill exits 2.
	bad := filepath.Join(dir, "bad.tar.gz.age")
	b, _ := os.ReadFile(archive)
	os.WriteFile(bad, b[:len(b)/2], 0o600)
	if _, errs, code := run(t, "backup", "drill", "--config", cfgPath, "--identity", idFile, bad); code != 2 {
		t.Errorf("drill of a truncated archive: exit %d %q, want exit 2", code, errs)
	}
}
