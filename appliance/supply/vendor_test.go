package supply

import (
	"bytes"
	"compress/gzip"
	"context"
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

	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// t0 is the fake clock's start; keys and signatures are made an hour before.
var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func signCfg() *packet.Config {
	return &packet.Config{Time: func() time.Time { return t0.Add(-time.Hour) }, RSABits: 2048, Algorithm: packet.PubKeyAlgoEdDSA}
}

// newKey makes a vendor key; lifetime 0 never expires.
func newKey(t *testing.T, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := signCfg()
	cfg.KeyLifetimeSecs = uint32(lifetime / time.Second)
	e, err := openpgp.NewEntity("Vendor", "test", "vendor@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armoredPublic(t *testing.T, e *openpgp.Entity) string {
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

func detachSign(t *testing.T, e *openpgp.Entity, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, e, bytes.NewReader(msg), signCfg()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func clearSign(t *testing.T, e *openpgp.Entity, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, e.PrivateKey, signCfg())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	w.Close()
	return b.Bytes()
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func xzPack(t testing.TB, b []byte) []byte {
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

// vendor is a fake vendor's web server on loopback: static files (with Range through
// http.ServeContent) plus special handlers.
type vendor struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	types map[string]string
	funcs map[string]http.HandlerFunc
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{files: map[string][]byte{}, types: map[string]string{}, funcs: map[string]http.HandlerFunc{}}
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

func (v *vendor) put(path string, data []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.files[path] = data
}

func (v *vendor) handle(path string, fn http.HandlerFunc) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.funcs[path] = fn
}

func (v *vendor) url(path string) string { return v.srv.URL + path }

// putSums publishes files under dir with a SHA256SUMS listing them (and its signature
// by key, when given).
func (v *vendor) putSums(t *testing.T, dir string, key *openpgp.Entity, files map[string][]byte) {
	var sums strings.Builder
	for name, data := range files {
		v.put(dir+"/"+name, data)
		fmt.Fprintf(&sums, "%s  %s\n", sum(data), name)
	}
	v.put(dir+"/SHA256SUMS", []byte(sums.String()))
	if key != nil {
		v.put(dir+"/SHA256SUMS.asc", detachSign(t, key, []byte(sums.String())))
	}
}

// debArchive is a small Debian archive: one suite "stable", component main, amd64.
type debArchive struct {
	deb      []byte
	packages string // the Packages text; built from deb when empty
	size     int64  // the size Packages states; len(deb) when 0
	valid    time.Time
	serve    []string          // the forms of Packages served: "", ".gz", ".xz" (nil: "" and ".gz")
	raw      map[string][]byte // bytes served (and listed) for a form instead of the real ones
}

func (v *vendor) putDebian(t *testing.T, key *openpgp.Entity, a debArchive) {
	const filename = "pool/main/h/hello/hello_1.0_amd64.deb"
	v.put("/debian/"+filename, a.deb)
	if a.size == 0 {
		a.size = int64(len(a.deb))
	}
	if a.packages == "" {
		a.packages = fmt.Sprintf("Package: hello\nVersion: 1.0\nArchitecture: amd64\nDescription: greets\n more text\n .\n end\nFilename: %s\nSize: %d\nSHA256: %s\n\nPackage: other\nVersion: 2\nFilename: pool/main/o/other.deb\nSize: 1\nSHA256: %s\n",
			filename, a.size, sum(a.deb), strings.Repeat("0", 64))
	}
	forms := map[string][]byte{"": []byte(a.packages), ".gz": gz(t, []byte(a.packages)), ".xz": xzPack(t, []byte(a.packages))}
	for f, b := range a.raw {
		forms[f] = b
	}
	if a.serve == nil {
		a.serve = []string{"", ".gz"}
	}
	for _, f := range a.serve {
		v.put("/debian/dists/stable/main/binary-amd64/Packages"+f, forms[f])
	}
	if a.valid.IsZero() {
		a.valid = t0.Add(7 * 24 * time.Hour)
	}
	// InRelease lists every form, served or not, as Debian's do.
	rel := fmt.Sprintf("Origin: Test\nSuite: stable\nDate: %s\nValid-Until: %s\nSHA256:\n", t0.Add(-time.Hour).Format(time.RFC1123), a.valid.Format(time.RFC1123))
	for _, f := range []string{"", ".gz", ".xz"} {
		rel += fmt.Sprintf(" %s %d main/binary-amd64/Packages%s\n", sum(forms[f]), len(forms[f]), f)
	}
	v.put("/debian/dists/stable/InRelease", clearSign(t, key, []byte(rel)))
}

// events records what a Service reports.
type events struct {
	mu       sync.Mutex
	rejected []Rejected
	staged   []Candidate
}

func (e *events) Rejected(_ context.Context, r Rejected) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rejected = append(e.rejected, r)
	return nil
}

func (e *events) Staged(_ context.Context, c Candidate) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.staged = append(e.staged, c)
	return nil
}

func openService(t *testing.T, clk clock.Clock, ev Events, srcs ...Source) *Service {
	t.Helper()
	var ps conf.Problems
	Section(srcs).Validate("sources", &ps)
	if len(ps) > 0 {
		t.Fatalf("test sources do not validate: %v", ps)
	}
	s, err := Open(context.Background(), storetest.Open(t), Section(srcs), Options{Dir: t.TempDir(), Clock: clk, Events: ev})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func hasProblemNaming(ps []health.Problem, name string) bool {
	for _, p := range ps {
		if strings.Contains(p.Text, "source "+name+":") {
			return true
		}
	}
	return false
}
