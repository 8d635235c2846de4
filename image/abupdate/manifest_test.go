package abupdate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bundle writes an update bundle for version into a new directory and returns it with
// its manifest.
func bundle(t *testing.T, version string, root, uki []byte) (string, Manifest) {
	t.Helper()
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write(root); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := Manifest{
		Version: version,
		Root:    File{Name: "patchgate-" + version + ".root.img.gz", Length: int64(gz.Len()), SHA256: sum(gz.Bytes()), RawLength: int64(len(root)), RawSHA256: sum(root)},
		UKI:     File{Name: "patchgate_" + version + ".efi", Length: int64(len(uki)), SHA256: sum(uki)},
	}
	if err := os.WriteFile(filepath.Join(dir, m.Root.Name), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, m.UKI.Name), uki, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestParseManifest(t *testing.T) {
	good := Manifest{Version: "0.1.8",
		Root: File{Name: "r.img.gz", Length: 10, SHA256: strings.Repeat("a", 64), RawLength: 20, RawSHA256: strings.Repeat("b", 64)},
		UKI:  File{Name: "u.efi", Length: 30, SHA256: strings.Repeat("c", 64)}}
	data, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest(good) = %v", err)
	}
	if d := cmp.Diff(good, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}

	tests := []struct {
		name string
		edit func(m *Manifest)
		raw  string
		want string
	}{
		{name: "path in name", edit: func(m *Manifest) { m.UKI.Name = "../../EFI/BOOT/BOOTX64.EFI" }, want: "uki.name: want a plain file name"},
		{name: "hidden name", edit: func(m *Manifest) { m.Root.Name = ".x" }, want: "root.name"},
		{name: "bad hash", edit: func(m *Manifest) { m.UKI.SHA256 = "abc" }, want: "uki.sha256: want 64 hex digits"},
		{name: "upper-case hash", edit: func(m *Manifest) { m.UKI.SHA256 = strings.Repeat("C", 64) }, want: "uki.sha256"},
		{name: "no raw hash", edit: func(m *Manifest) { m.Root.RawSHA256 = "" }, want: "root.raw_sha256"},
		{name: "raw on uki", edit: func(m *Manifest) { m.UKI.RawLength = 5 }, want: "raw_length and raw_sha256 are for the root only"},
		{name: "zero length", edit: func(m *Manifest) { m.Root.Length = 0 }, want: "root.length: must be positive"},
		{name: "bad version", edit: func(m *Manifest) { m.Version = "v1+2" }, want: "version:"},
		{name: "unknown field", raw: `{"version":"0.1.8","extra":1}`, want: `unknown field "extra"`},
		{name: "two objects", raw: string(data) + string(data), want: "data after the JSON object"},
		{name: "not json", raw: "version: 1", want: "invalid character"},
		{name: "too big", raw: strings.Repeat(" ", maxManifest+1), want: "want at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.raw)
			if tt.edit != nil {
				m := good
				tt.edit(&m)
				in, _ = json.Marshal(m)
			}
			_, err := ParseManifest(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParseManifest: ParseManifest never panics, and every manifest it accepts names
// plain files (no path can escape the bundle directory) and re-encodes to a manifest it
// accepts again, equal to the first.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":"0.1.8","root":{"name":"r.gz","length":1,"sha256":"` + strings.Repeat("a", 64) + `","raw_length":2,"raw_sha256":"` + strings.Repeat("b", 64) + `"},"uki":{"name":"u.efi","length":3,"sha256":"` + strings.Repeat("c", 64) + `"}}`))
	f.Add([]byte(`{"version":"0.1.8","uki":{"name":"../x"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, n := range []string{m.Root.Name, m.UKI.Name} {
			if filepath.Join("/bundle", n) != "/bundle/"+n || strings.Contains(n, "/") {
				t.Fatalf("accepted file name %q escapes the bundle directory", n)
			}
		}
		again, _ := json.Marshal(m)
		m2, err := ParseManifest(again)
		if err != nil || m2 != m {
			t.Fatalf("re-encoded manifest %s: %v, %+v", again, err, m2)
		}
	})
}

func TestInstallBundle(t *testing.T) {
	root, uki := makeRoot(uuidC), makeUKI(t, "root=UUID="+uuidC+" ro")
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string, m *Manifest)
		want   string // "" means success
	}{
		{name: "good"},
		{name: "compressed file changed", tamper: func(t *testing.T, dir string, m *Manifest) {
			// Trailing bytes after the gzip stream: the image still decompresses right,
			// but the file is not the one the manifest (the TUF target) describes.
			f, err := os.OpenFile(filepath.Join(dir, m.Root.Name), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("extra"))
			f.Close()
			m.Root.Length += 5
		}, want: "compressed root: sha256"},
		{name: "raw hash wrong", tamper: func(t *testing.T, dir string, m *Manifest) { m.Root.RawSHA256 = sum([]byte("other")) }, want: "root: sha256"},
		{name: "missing uki", tamper: func(t *testing.T, dir string, m *Manifest) { os.Remove(filepath.Join(dir, m.UKI.Name)) }, want: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(t, uuidA, uuidB, map[string]string{"patchgate_0.1.7.efi": uuidA})
			u := &Updater{ESP: d.esp, Slots: d.slots, RunningRoot: uuidA}
			dir, m := bundle(t, "0.1.8", root, uki)
			if tt.tamper != nil {
				tt.tamper(t, dir, &m)
			}
			err := u.InstallBundle(context.Background(), dir, m)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("InstallBundle = %v", err)
				}
				if diff := cmp.Diff([]string{"patchgate_0.1.8+3-0.efi pending 3333", "patchgate_0.1.7.efi good 1111"}, files(t, d.esp)); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("InstallBundle = %v, want an error containing %q", err, tt.want)
			}
			if diff := cmp.Diff([]string{"patchgate_0.1.7.efi good 1111"}, files(t, d.esp)); diff != "" {
				t.Errorf("entries after a refused bundle (-want +got):\n%s", diff)
			}
		})
	}
}
