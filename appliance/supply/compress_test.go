package supply

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/supply/supplytest"
	"github.com/patchgate/patchgate/clock"
)

// A Debian source reads Packages.xz, Packages.gz or Packages, whichever InRelease
// lists and the mirror serves first (smallest first); a broken compressed index is
// refused as malformed, naming it.
func TestDebianIndexForms(t *testing.T) {
	key := newKey(t, 0)
	pub := armoredPublic(t, key)
	for _, tc := range []struct {
		name   string
		serve  []string
		raw    map[string][]byte
		result string
		reason string
		msg    string
	}{
		{name: "xz only", serve: []string{".xz"}, result: "ok"},
		{name: "gz only", serve: []string{".gz"}, result: "ok"},
		{name: "plain only", serve: []string{""}, result: "ok"},
		{name: "all forms", serve: []string{"", ".gz", ".xz"}, result: "ok"},
		{name: "none served", serve: []string{}, result: "rejected", reason: reasonStatus, msg: "Packages: status 404"},
		{name: "broken xz", serve: []string{".xz"}, raw: map[string][]byte{".xz": []byte("\xfd7zXZ\x00 not really")}, result: "rejected", reason: reasonMalformed, msg: "Packages.xz: xz:"},
		{name: "xz of a malformed index", serve: []string{".xz"}, raw: map[string][]byte{".xz": xzPack(t, []byte("Package: hello\nSize: many\n"))},
			result: "rejected", reason: reasonMalformed, msg: "Packages:1: package without Version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t)
			v.PutDebian(t, key, supplytest.DebArchive{Deb: []byte("!<arch>\nfake deb"), Serve: tc.serve, Raw: tc.raw})
			src := debSource(v, pub)
			src.Name = "deb"
			s := openService(t, clock.NewFake(t0), nil, src)
			st, err := s.Check(context.Background(), "deb")
			if err != nil || st.Result != tc.result || st.Reason != tc.reason || !strings.Contains(st.Error, tc.msg) {
				t.Fatalf("Check = %+v, %v; want %s %s with %q", st, err, tc.result, tc.reason, tc.msg)
			}
			if tc.result == "ok" && st.Candidates != 1 {
				t.Errorf("candidates = %d, want the package", st.Candidates)
			}
		})
	}
}

// A dictionary larger than maxXZDict is refused before the decoder allocates it.
func TestXZDictionaryBound(t *testing.T) {
	data := xzPack(t, []byte("Package: a\n"))
	// The block header follows the 12-byte stream header: size, flags, then the LZMA2
	// filter (id 0x21, one property byte: the dictionary size code); 40 is 4 GiB.
	i := bytes.Index(data[12:], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	data[12+i+2] = 40
	_, err := decompress("Packages.xz", bytes.NewReader(data), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Fatalf("decompress = %v, want the dictionary refused", err)
	}
}

// The decoder path of every compressed form never panics, and what it yields goes
// through the Packages parser's checks.
func FuzzDecompressPackages(f *testing.F) {
	text := []byte("Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 3\nSHA256: " + h1 + "\n")
	f.Add(xzPack(f, text))
	f.Add(gz(f, text))
	f.Add([]byte("\xfd7zXZ\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"Packages.xz", "Packages.gz", "Packages"} {
			in, err := decompress(name, bytes.NewReader(data), 1<<20)
			if err != nil {
				continue
			}
			checkPackagesParse(t, in)
		}
	})
}
