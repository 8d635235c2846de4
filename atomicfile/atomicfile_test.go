package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	cases := []struct {
		name   string
		before string // "" for no file yet
		data   string
		perm   os.FileMode
	}{
		{"new file", "", "first\n", 0o600},
		{"replaces", "old content that is longer\n", "new\n", 0o644},
		{"empty", "something", "", 0o640},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, []byte(tc.data), tc.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tc.data {
				t.Fatalf("content %q, %v; want %q", got, err, tc.data)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			if des, _ := os.ReadDir(dir); len(des) != 1 {
				t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(des))
			}
		})
	}
}

// TestWriteFailsLeavingTheOldFile: when the rename cannot happen (the target is a
// directory), the old content stays and no temporary file is left.
func TestWriteFailsLeavingTheOldFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("data"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.Contains(de.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Errorf("the old content is gone: %v", err)
	}
}

// TestWriteFrom streams into the file; perm 0 leaves it as created, 0600, with no chmod.
func TestWriteFrom(t *testing.T) {
	for _, perm := range []os.FileMode{0o640, 0} {
		path := filepath.Join(t.TempDir(), "archive")
		if err := WriteFrom(path, strings.NewReader("streamed\n"), perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != "streamed\n" {
			t.Fatalf("content %q, %v; want %q", got, err, "streamed\n")
		}
		want := perm
		if perm == 0 {
			want = 0o600
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != want {
			t.Errorf("perm %v: mode %v, want %v", perm, fi.Mode().Perm(), want)
		}
	}
}

// TestWriteWithCheckFails: fill reads back what it wrote and refuses it; the old file
// stays and no temporary is left.
func TestWriteWithCheckFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "boot.efi")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("not what was wanted")
	err := WriteWith(path, 0, func(f *os.File) error {
		if _, err := f.WriteString("new"); err != nil {
			return err
		}
		if b, err := os.ReadFile(f.Name()); err != nil || string(b) != "new" {
			t.Errorf("reading back the temporary: %q, %v", b, err)
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("WriteWith = %v, want the check's error", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("content %q, want the old one", got)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(des))
	}
}
