package abupdate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/image/abupdate/abupdatetest"
)

func makeUKI(t *testing.T, cmdline string) []byte {
	t.Helper()
	return abupdatetest.UKI(cmdline)
}

func makeRoot(uuid string) []byte { return abupdatetest.Root(uuid) }

func artifact(b []byte) Artifact {
	sum := sha256.Sum256(b)
	return Artifact{R: bytes.NewReader(b), Length: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

const (
	uuidA = "11111111-1111-4111-8111-111111111111"
	uuidB = "22222222-2222-4222-8222-222222222222"
	uuidC = "33333333-3333-4333-8333-333333333333"
)

type disk struct {
	esp   string
	slots [2]string
}

// newDisk makes an ESP directory and two slot files: A holds rootA, B holds rootB (or
// nothing), and the ESP holds the given UKI files.
func newDisk(t *testing.T, rootA, rootB string, ukis map[string]string) disk {
	t.Helper()
	dir := t.TempDir()
	d := disk{esp: filepath.Join(dir, "esp"), slots: [2]string{filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")}}
	if err := os.MkdirAll(filepath.Join(d.esp, linuxDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{rootA, rootB} {
		img := make([]byte, 64<<10)
		if id != "" {
			img = makeRoot(id)
		}
		if err := os.WriteFile(d.slots[i], img, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for file, root := range ukis {
		if err := os.WriteFile(filepath.Join(d.esp, linuxDir, file), makeUKI(t, "root=UUID="+root+" ro console=ttyS0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func files(t *testing.T, esp string) []string {
	t.Helper()
	es, err := Entries(esp)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.File+" "+string(e.State())+" "+e.RootUUID[:4])
	}
	return out
}

func TestParseName(t *testing.T) {
	tests := []struct {
		file string
		want Entry
		ok   bool
	}{
		{"patchgate_0.1.7.efi", Entry{Version: "0.1.7"}, true},
		{"patchgate_0.1.7+3-0.efi", Entry{Version: "0.1.7", Counting: true, TriesLeft: 3}, true},
		{"patchgate_0.1.7+2-1.efi", Entry{Version: "0.1.7", Counting: true, TriesLeft: 2, TriesDone: 1}, true},
		{"patchgate_0.1.7+0-3.efi", Entry{Version: "0.1.7", Counting: true, TriesDone: 3}, true},
		{"patchgate_0.1.7+3.efi", Entry{Version: "0.1.7", Counting: true, TriesLeft: 3}, true},
		{"patchgate_1.0~rc1-2.efi", Entry{Version: "1.0~rc1-2"}, true},
		{"other_0.1.efi", Entry{}, false},
		{"patchgate_.efi", Entry{}, false},
		{"patchgate_0.1.7.conf", Entry{}, false},
		{"patchgate_0.1+x.efi", Entry{}, false},
	}
	for _, tt := range tests {
		got, ok := parseName(tt.file)
		if tt.ok {
			tt.want.File = tt.file
		}
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseName(%q) = %+v, %v; want %+v, %v", tt.file, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0.1.7", "0.1.7", 0},
		{"0.1.10", "0.1.9", 1},
		{"0.1.7.1", "0.1.7", 1},
		{"0.2~rc1", "0.2", -1},
		{"1.0", "0.99", 1},
		{"0.1.07", "0.1.7", 0},
		{"0.1a", "0.1.1", -1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestEntriesOrderAndRoot(t *testing.T) {
	d := newDisk(t, uuidA, uuidB, map[string]string{
		"patchgate_0.1.7.efi":      uuidA,
		"patchgate_0.1.9+0-3.efi":  uuidC,
		"patchgate_0.1.8+2-1.efi":  uuidB,
		"README.txt":               uuidC,
		"patchgate_0.1.10+0-1.efi": uuidC,
	})
	want := []string{
		"patchgate_0.1.8+2-1.efi pending 2222",
		"patchgate_0.1.7.efi good 1111",
		"patchgate_0.1.10+0-1.efi bad 3333",
		"patchgate_0.1.9+0-3.efi bad 3333",
	}
	if d := cmp.Diff(want, files(t, d.esp)); d != "" {
		t.Errorf("Entries (-want +got):\n%s", d)
	}
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	d := newDisk(t, uuidA, uuidB, map[string]string{
		"patchgate_0.1.7.efi":     uuidA, // running
		"patchgate_0.1.6+0-3.efi": uuidB, // boots slot B, about to be overwritten
	})
	u := &Updater{ESP: d.esp, Slots: d.slots, RunningRoot: uuidA}
	root, uki := makeRoot(uuidC), makeUKI(t, "root=UUID="+uuidC+" ro")
	if err := u.Install(ctx, "0.1.8", artifact(root), artifact(uki)); err != nil {
		t.Fatalf("Install: %v", err)
	}
	want := []string{"patchgate_0.1.8+3-0.efi pending 3333", "patchgate_0.1.7.efi good 1111"}
	if diff := cmp.Diff(want, files(t, d.esp)); diff != "" {
		t.Errorf("entries after Install (-want +got):\n%s", diff)
	}
	got, err := os.ReadFile(d.slots[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(root)], root) {
		t.Error("slot B does not hold the new root image")
	}
	if id, _ := FSUUID(d.slots[0]); id != uuidA {
		t.Errorf("running slot A changed: UUID %q", id)
	}
	st, err := u.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Running != "0.1.7" || len(st.Pending()) != 1 || st.Pending()[0].Version != "0.1.8" {
		t.Errorf("Status = running %q, pending %+v; want 0.1.7 and 0.1.8", st.Running, st.Pending())
	}
	if err := u.Install(ctx, "0.1.8", artifact(root), artifact(uki)); err == nil || !strings.Contains(err.Error(), "already installed") {
		t.Errorf("second Install of 0.1.8 = %v, want already installed", err)
	}
}

func TestInstallRefusesBadInput(t *testing.T) {
	root := makeRoot(uuidC)
	uki := makeUKI(t, "root=UUID="+uuidC+" ro")
	corrupt := func(a Artifact) Artifact { a.SHA256 = strings.Repeat("0", 64); return a }
	short := func(a Artifact) Artifact { a.Length++; return a }
	tests := []struct {
		name      string
		version   string
		root, uki Artifact
		running   string
		want      string
	}{
		{"root hash", "0.1.8", corrupt(artifact(root)), artifact(uki), uuidA, "root: sha256"},
		{"root length", "0.1.8", short(artifact(root)), artifact(uki), uuidA, "root: got 65536 bytes, want 65537"},
		{"uki hash", "0.1.8", artifact(root), corrupt(artifact(uki)), uuidA, "uki: sha256"},
		{"uki for another root", "0.1.8", artifact(root), artifact(makeUKI(t, "root=UUID="+uuidB)), uuidA, "but the root image written has " + uuidC},
		{"not a uki", "0.1.8", artifact(root), artifact([]byte("MZ not really")), uuidA, "not a UKI"},
		{"root not ext4", "0.1.8", artifact(make([]byte, 8192)), artifact(uki), uuidA, `filesystem UUID ""`},
		{"root same as running", "0.1.8", artifact(makeRoot(uuidA)), artifact(uki), uuidA, "want a new ext4 filesystem"},
		{"bad version", "0.1.8+1", artifact(root), artifact(uki), uuidA, "version"},
		{"running nowhere", "0.1.8", artifact(root), artifact(uki), uuidC, "in neither slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(t, uuidA, uuidB, map[string]string{"patchgate_0.1.7.efi": uuidA})
			u := &Updater{ESP: d.esp, Slots: d.slots, RunningRoot: tt.running}
			err := u.Install(context.Background(), tt.version, tt.root, tt.uki)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Install = %v, want an error containing %q", err, tt.want)
			}
			// The running version stays the only bootable entry, and nothing temporary is left.
			if diff := cmp.Diff([]string{"patchgate_0.1.7.efi good 1111"}, files(t, d.esp)); diff != "" {
				t.Errorf("entries after a failed Install (-want +got):\n%s", diff)
			}
			left, _ := os.ReadDir(filepath.Join(d.esp, linuxDir))
			if len(left) != 1 {
				t.Errorf("ESP holds %d files, want 1", len(left))
			}
			if id, _ := FSUUID(d.slots[0]); id != uuidA {
				t.Errorf("running slot A changed: UUID %q", id)
			}
		})
	}
}

func TestInstallCancelled(t *testing.T) {
	d := newDisk(t, uuidA, "", map[string]string{"patchgate_0.1.7.efi": uuidA})
	u := &Updater{ESP: d.esp, Slots: d.slots, RunningRoot: uuidA}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := u.Install(ctx, "0.1.8", artifact(makeRoot(uuidC)), artifact(makeUKI(t, "root=UUID="+uuidC)))
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Install with a cancelled context = %v, want context canceled", err)
	}
	if id, _ := FSUUID(d.slots[1]); id != "" {
		t.Errorf("slot B holds filesystem %q after a cancelled install, want none", id)
	}
}

func TestRollback(t *testing.T) {
	d := newDisk(t, uuidA, uuidB, map[string]string{
		"patchgate_0.1.7.efi": uuidA,
		"patchgate_0.1.8.efi": uuidB, // running, blessed
	})
	u := &Updater{ESP: d.esp, Slots: d.slots, RunningRoot: uuidB}
	prev, err := u.Rollback()
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if prev.File != "patchgate_0.1.7.efi" {
		t.Errorf("Rollback goes to %s, want patchgate_0.1.7.efi", prev.File)
	}
	want := []string{"patchgate_0.1.7.efi good 1111", "patchgate_0.1.8+0-0.efi bad 2222"}
	if diff := cmp.Diff(want, files(t, d.esp)); diff != "" {
		t.Errorf("entries after Rollback (-want +got):\n%s", diff)
	}

	// From 0.1.7 there is nothing good to go back to.
	u.RunningRoot = uuidA
	if _, err := u.Rollback(); err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Errorf("second Rollback = %v, want no previous version", err)
	}
}

func TestRunningRootUUID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(p, []byte("BOOT_IMAGE=x root=UUID=ABCD-1 ro quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := RunningRootUUID(p); err != nil || got != "abcd-1" {
		t.Errorf("RunningRootUUID = %q, %v; want abcd-1", got, err)
	}
	if err := os.WriteFile(p, []byte("root=/dev/sda1 ro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RunningRootUUID(p); err == nil {
		t.Error("RunningRootUUID without root=UUID= succeeded; want an error")
	}
}

// FuzzParseName: parseName never panics, and what it accepts has a version that
// CheckVersion accepts and round-trips: the canonical name rebuilt from the parsed
// fields parses to the same fields.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"patchgate_0.1.7.efi", "patchgate_0.1.7+3-0.efi", "patchgate_1~rc+0.efi", "patchgate_9+99999999999999999999-1.efi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, ok := parseName(s)
		if !ok {
			return
		}
		if err := CheckVersion(e.Version); err != nil {
			t.Fatalf("parseName(%q) accepted version %q that CheckVersion refuses: %v", s, e.Version, err)
		}
		left := -1
		if e.Counting {
			left = e.TriesLeft
		}
		again, ok := parseName(name(e.Version, left, e.TriesDone))
		again.File = e.File
		if !ok || again != e {
			t.Fatalf("parseName(%q) = %+v, but its canonical name parses to %+v, %v", s, e, again, ok)
		}
	})
}
