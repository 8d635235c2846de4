// Package supplytest is a fake vendor for tests of appliance/supply and of the whole
// appliance: a loopback web server with static files (Range through
// http.ServeContent) and special handlers, OpenPGP keys and signatures made with
// ProtonMail/go-crypto, signed SHA256SUMS files and small signed Debian archives.
// Keys and signatures are made at a time the caller gives (the clock the code under
// test reads may be fake).
package supplytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"
)

// SignConfig makes keys and signatures dated at.
func SignConfig(at time.Time) *packet.Config {
	return &packet.Config{Time: func() time.Time { return at }, RSABits: 2048, Algorithm: packet.PubKeyAlgoEdDSA}
}

// NewKey makes a vendor key created at; lifetime 0 never expires.
func NewKey(t testing.TB, at time.Time, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := SignConfig(at)
	cfg.KeyLifetimeSecs = uint32(lifetime / time.Second)
	e, err := openpgp.NewEntity("Vendor", "test", "vendor@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ArmoredPublic is e's public key, armored, as a source pins it.
func ArmoredPublic(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

// DetachSign is an armored detached signature of msg by e, made at.
func DetachSign(t testing.TB, e *openpgp.Entity, at time.Time, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, e, bytes.NewReader(msg), SignConfig(at)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ClearSign is msg clearsigned by e (as an InRelease), made at.
func ClearSign(t testing.TB, e *openpgp.Entity, at time.Time, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, e.PrivateKey, SignConfig(at))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	w.Close()
	return b.Bytes()
}

// Sum is b's sha256 in hex.
func Sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// Gz is b gzipped.
func Gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// XZ is b xz-compressed.
func XZ(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Vendor is a fake vendor's web server on loopback: static files plus special
// handlers. Its signatures are dated SignedAt.
type Vendor struct {
	SignedAt time.Time
	srv      *httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	types    map[string]string
	funcs    map[string]http.HandlerFunc
}

// NewVendor starts a vendor whose signatures are dated signedAt; it stops when the
// test ends.
func NewVendor(t testing.TB, signedAt time.Time) *Vendor {
	v := &Vendor{SignedAt: signedAt, files: map[string][]byte{}, types: map[string]string{}, funcs: map[string]http.HandlerFunc{}}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		data, ok := v.files[r.URL.Path]
		ct := v.types[r.URL.Path]
		fn := v.funcs[r.URL.Path]
		v.mu.Unlock()
		if fn != nil {
			fn(w, r)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(v.srv.Close)
	return v
}

// Put serves data at path.
func (v *Vendor) Put(path string, data []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.files[path] = data
}

// Handle serves path with fn.
func (v *Vendor) Handle(path string, fn http.HandlerFunc) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.funcs[path] = fn
}

// URL is path's address on the vendor.
func (v *Vendor) URL(path string) string { return v.srv.URL + path }

// PutSums publishes files under dir with a SHA256SUMS listing them (and its detached
// signature SHA256SUMS.asc by key, when given).
func (v *Vendor) PutSums(t testing.TB, dir string, key *openpgp.Entity, files map[string][]byte) {
	t.Helper()
	var sums strings.Builder
	for name, data := range files {
		v.Put(dir+"/"+name, data)
		fmt.Fprintf(&sums, "%s  %s\n", Sum(data), name)
	}
	v.Put(dir+"/SHA256SUMS", []byte(sums.String()))
	if key != nil {
		v.Put(dir+"/SHA256SUMS.asc", DetachSign(t, key, v.SignedAt, []byte(sums.String())))
	}
}

// DebArchive is a small Debian archive under /debian: suite "stable", component main,
// amd64, package hello of Version (1.0 when empty).
type DebArchive struct {
	Deb      []byte
	Version  string
	Packages string // the Packages text; built from Deb when empty
	Size     int64  // the size Packages states; len(Deb) when 0
	Valid    time.Time
	Serve    []string          // the forms of Packages served: "", ".gz", ".xz" (nil: "" and ".gz")
	Raw      map[string][]byte // bytes served (and listed) for a form instead of the real ones
}

// DebFilename is where hello of version lies in the archive.
func DebFilename(version string) string {
	return "pool/main/h/hello/hello_" + version + "_amd64.deb"
}

// PutDebian publishes a as the archive's only version, its InRelease clearsigned by key
// and valid until a.Valid (SignedAt plus a week when zero).
func (v *Vendor) PutDebian(t testing.TB, key *openpgp.Entity, a DebArchive) {
	t.Helper()
	if a.Version == "" {
		a.Version = "1.0"
	}
	filename := DebFilename(a.Version)
	v.Put("/debian/"+filename, a.Deb)
	if a.Size == 0 {
		a.Size = int64(len(a.Deb))
	}
	if a.Packages == "" {
		a.Packages = fmt.Sprintf("Package: hello\nVersion: %s\nArchitecture: amd64\nDescription: greets\n more text\n .\n end\nFilename: %s\nSize: %d\nSHA256: %s\n\nPackage: other\nVersion: 2\nFilename: pool/main/o/other.deb\nSize: 1\nSHA256: %s\n",
			a.Version, filename, a.Size, Sum(a.Deb), strings.Repeat("0", 64))
	}
	forms := map[string][]byte{"": []byte(a.Packages), ".gz": Gz(t, []byte(a.Packages)), ".xz": XZ(t, []byte(a.Packages))}
	for f, b := range a.Raw {
		forms[f] = b
	}
	if a.Serve == nil {
		a.Serve = []string{"", ".gz"}
	}
	for _, f := range a.Serve {
		v.Put("/debian/dists/stable/main/binary-amd64/Packages"+f, forms[f])
	}
	if a.Valid.IsZero() {
		a.Valid = v.SignedAt.Add(7 * 24 * time.Hour)
	}
	// InRelease lists every form, served or not, as Debian's do.
	rel := fmt.Sprintf("Origin: Test\nSuite: stable\nDate: %s\nValid-Until: %s\nSHA256:\n", v.SignedAt.Format(time.RFC1123), a.Valid.Format(time.RFC1123))
	for _, f := range []string{"", ".gz", ".xz"} {
		rel += fmt.Sprintf(" %s %d main/binary-amd64/Packages%s\n", Sum(forms[f]), len(forms[f]), f)
	}
	v.Put("/debian/dists/stable/InRelease", ClearSign(t, key, v.SignedAt, []byte(rel)))
}

// Deb is a small but well-formed Debian binary package of name and version: an ar
// archive of debian-binary, control.tar.gz (its control file) and an empty
// data.tar.gz, as dpkg-deb builds them.
func Deb(t testing.TB, name, version string) []byte {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: Vendor <vendor@example.invalid>\nDescription: test package\n", name, version)
	var out bytes.Buffer
	out.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		data []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", Gz(t, tarOf(t, "./control", []byte(control)))},
		{"data.tar.gz", Gz(t, tarOf(t, "", nil))},
	} {
		fmt.Fprintf(&out, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.data))
		out.Write(m.data)
		if len(m.data)%2 == 1 {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// tarOf is a tar archive of one file (none when name is empty).
func tarOf(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	if name != "" {
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
