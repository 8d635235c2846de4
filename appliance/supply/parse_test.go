package supply

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/conf"
)

var h1 = strings.Repeat("ab", 32)

func TestParseSumsErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ok", h1 + "  a.zip\n\n" + h1 + " *b/c.zip\r\n", ""},
		{"short hash", "abc  a.zip\n", "SHA256SUMS:1: want a sha256"},
		{"one space", h1 + "  a\n" + h1 + " b\n", "SHA256SUMS:2: want two spaces"},
		{"no name", h1 + "  \n", "SHA256SUMS:1: want two spaces"},
		{"escape", h1 + "  ok\n" + h1 + "  ../etc/passwd\n", "SHA256SUMS:2: file name"},
		{"absolute", h1 + "  /etc/passwd\n", "SHA256SUMS:1: file name"},
		{"listed twice", h1 + "  a\n" + h1 + "  a\n", "SHA256SUMS:2: \"a\" already listed on line 1"},
		{"long line", strings.Repeat("x", maxListLine+10), "SHA256SUMS:1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSums("SHA256SUMS", strings.NewReader(tc.in))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("ParseSums = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	es, err := ParseManifest("MANIFEST", strings.NewReader("# media\n"+h1+" 12 Setup Tool.exe\n"))
	if err != nil || len(es) != 1 || es[0].Name != "Setup Tool.exe" || es[0].Size != 12 {
		t.Fatalf("ParseManifest = %+v, %v", es, err)
	}
	if _, err := ParseManifest("MANIFEST", strings.NewReader(h1+" -1 x\n")); err == nil || !strings.Contains(err.Error(), "MANIFEST:1: want a size") {
		t.Errorf("negative size: %v", err)
	}
}

func TestParsePackagesErrorsNameTheLine(t *testing.T) {
	good := "Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 3\nSHA256: " + h1 + "\n"
	tests := []struct {
		name, in, want string
	}{
		{"ok", good + "\n" + good, ""},
		{"no colon", "Package: a\nbroken\n", "Packages:2: want \"Field: value\""},
		{"continuation first", " x\n", "Packages:1: continuation line"},
		{"missing sha256", "Package: a\nVersion: 1\nFilename: a.deb\nSize: 1\n", "Packages:1: package without SHA256"},
		{"bad size", "\n\nPackage: a\nVersion: 1\nFilename: a.deb\nSize: lots\nSHA256: " + h1 + "\n", "Packages:6: Size"},
		{"bad filename", "Package: a\nVersion: 1\nFilename: ../a.deb\nSize: 1\nSHA256: " + h1 + "\n", "Packages:3: Filename"},
		{"repeated field", "Package: a\nPackage: b\n", "Packages:2: field Package repeated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ParsePackages("Packages", strings.NewReader(tc.in), func(Package) error { return nil })
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("ParsePackages = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseRelease(t *testing.T) {
	rel, err := ParseRelease("InRelease", strings.NewReader("Suite: s\nValid-Until: Sat, 05 Dec 2026 10:00:00 UTC\nSHA256:\n "+h1+" 10 main/binary-amd64/Packages\n"))
	if err != nil || rel.Files["main/binary-amd64/Packages"].Size != 10 || rel.ValidUntil.IsZero() {
		t.Fatalf("ParseRelease = %+v, %v", rel, err)
	}
	_, err = ParseRelease("InRelease", strings.NewReader("Suite: s\nSHA256:\n "+h1+" ten p\n"))
	if err == nil || !strings.Contains(err.Error(), "InRelease:3: SHA256") {
		t.Errorf("bad size: %v", err)
	}
}

func TestSectionValidate(t *testing.T) {
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	tests := []struct {
		name string
		src  Source
		want string // a problem key, "" for none
	}{
		{"url pinned", Source{Name: "a", Kind: KindURL, URL: "https://v.example/a.msi", SHA256: h1}, ""},
		{"url without hash", Source{Name: "a", Kind: KindURL, URL: "https://v.example/a.msi"}, "sources[0].sha256"},
		{"openpgp without key", Source{Name: "a", Kind: KindOpenPGP, URL: "https://v.example/a"}, "sources[0].key"},
		{"url with hash and checksums", Source{Name: "a", Kind: KindURL, URL: "https://v.example/a.msi", SHA256: h1, ChecksumsURL: "https://v.example/sums"}, "sources[0].checksums_url"},
		{"url by checksums", Source{Name: "a", Kind: KindURL, ChecksumsURL: "https://v.example/sums", Files: []string{"*.msi"}}, ""},
		{"url by checksums with url", Source{Name: "a", Kind: KindURL, URL: "https://v.example/a.msi", ChecksumsURL: "https://v.example/sums"}, "sources[0].url"},
		{"openpgp signed file", Source{Name: "a", Kind: KindOpenPGP, Key: key, URL: "https://v.example/a"}, ""},
		{"openpgp signed checksums", Source{Name: "a", Kind: KindOpenPGP, Key: key, ChecksumsURL: "https://v.example/sums"}, ""},
		{"openpgp neither", Source{Name: "a", Kind: KindOpenPGP, Key: key}, "sources[0].url"},
		{"openpgp both", Source{Name: "a", Kind: KindOpenPGP, Key: key, URL: "https://v.example/a", ChecksumsURL: "https://v.example/sums"}, "sources[0].checksums_url"},
		{"debian", Source{Name: "a", Kind: KindDebian, URL: "https://deb.example/debian", Key: key, Suite: "stable", Components: []string{"main"}, Architectures: []string{"amd64"}, Packages: []string{"x*"}}, ""},
		{"debian without packages", Source{Name: "a", Kind: KindDebian, URL: "https://deb.example/debian", Key: key, Suite: "stable", Components: []string{"main"}, Architectures: []string{"amd64"}}, "sources[0].packages"},
		{"authenticode", Source{Name: "a", Kind: "authenticode"}, "sources[0].kind"},
		{"import", Source{Name: "a", Kind: KindImport, Dir: "/media/usb"}, ""},
		{"bad name", Source{Name: "A B", Kind: KindImport, Dir: "/x"}, "sources[0].name"},
		{"ftp", Source{Name: "a", Kind: KindURL, URL: "ftp://v.example/a", SHA256: h1}, "sources[0].url"},
		{"install", Source{Name: "a", Kind: KindImport, Dir: "/x", Install: map[string]agentapi.Step{"linux": {Command: []string{"/usr/bin/dpkg", "-i", "{file}"}}}}, ""},
		{"install relative", Source{Name: "a", Kind: KindImport, Dir: "/x", Install: map[string]agentapi.Step{"linux": {Command: []string{"dpkg"}}}}, "sources[0].install"},
		{"install unknown os", Source{Name: "a", Kind: KindImport, Dir: "/x", Install: map[string]agentapi.Step{"plan9": {Command: []string{"/bin/x"}}}}, "sources[0].install"},
		{"window", Source{Name: "a", Kind: KindImport, Dir: "/x", DownloadWindow: &Window{From: tod(22, 0), To: tod(6, 0), Days: []string{"sat"}}}, ""},
		{"window empty", Source{Name: "a", Kind: KindImport, Dir: "/x", DownloadWindow: &Window{From: tod(22, 0), To: tod(22, 0)}}, "sources[0].download_window.to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps conf.Problems
			Section{tc.src}.Validate("sources", &ps)
			got := ""
			if len(ps) > 0 {
				got = ps[0].Key
			}
			if got != tc.want {
				t.Errorf("Validate = %v, want a problem at %q", ps, tc.want)
			}
		})
	}
}

// The list parsers never panic and what they return obeys their checks.
func FuzzParseSums(f *testing.F) {
	f.Add([]byte(h1 + "  a.zip\n" + h1 + " *b\n"))
	f.Add([]byte(h1 + " 12 name with space\n# c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func(string, *bytes.Reader) ([]Entry, error){
			func(n string, r *bytes.Reader) ([]Entry, error) { return ParseSums(n, r) },
			func(n string, r *bytes.Reader) ([]Entry, error) { return ParseManifest(n, r) },
		} {
			es, err := parse("f", bytes.NewReader(data))
			if err != nil && !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			for _, e := range es {
				if !hexRE.MatchString(e.SHA256) || checkFileName(e.Name) != nil {
					t.Fatalf("accepted %+v", e)
				}
			}
		}
	})
}

// The Debian parsers never panic and every package they return is complete.
func FuzzParsePackages(f *testing.F) {
	f.Add([]byte("Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 3\nSHA256: " + h1 + "\n\nPackage: b\n"))
	f.Add([]byte("Suite: s\nSHA256:\n " + h1 + " 10 main/binary-amd64/Packages\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkPackagesParse(t, bytes.NewReader(data))
		ParseRelease("InRelease", bytes.NewReader(data))
	})
}

// checkPackagesParse parses r as a Packages index: every package it yields is
// complete, an error names the file.
func checkPackagesParse(t *testing.T, r io.Reader) {
	t.Helper()
	err := ParsePackages("Packages", r, func(p Package) error {
		if p.Name == "" || p.Size < 0 || !hexRE.MatchString(p.SHA256) || checkFileName(p.Filename) != nil {
			t.Fatalf("accepted %+v", p)
		}
		return nil
	})
	if err != nil && !strings.HasPrefix(err.Error(), "Packages:") {
		t.Fatalf("error %q does not name the file and line", err)
	}
}

// The install and download_window keys read from strict YAML as the config file writes
// them.
func TestSectionYAML(t *testing.T) {
	const doc = `
- name: labeltool
  kind: url
  url: https://vendor.example/LabelTool-4.2.msi
  sha256: ` + "abababababababababababababababababababababababababababababababab" + `
  download_window: {from: "22:00", to: "06:00", days: [mon, fri]}
  install:
    windows:
      command: ['C:\Windows\System32\msiexec.exe', /i, "{file}", /qn]
      reboot: true
      min_free_bytes: 524288000
`
	var sec Section
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&sec); err != nil {
		t.Fatal(err)
	}
	var ps conf.Problems
	sec.Validate("sources", &ps)
	if len(ps) > 0 {
		t.Fatalf("Validate: %v", ps)
	}
	src := sec[0]
	if w := src.DownloadWindow; w == nil || w.String() != "22:00-06:00 mon,fri" {
		t.Errorf("download_window = %v, want 22:00-06:00 mon,fri", w)
	}
	if st := src.Install["windows"]; len(st.Command) != 4 || st.Command[0] != `C:\Windows\System32\msiexec.exe` || !st.Reboot || st.MinFreeBytes != 524288000 {
		t.Errorf("install = %+v", src.Install)
	}
}
