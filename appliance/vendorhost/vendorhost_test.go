package vendorhost

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf"
)

// fakeTargets answers like the cache: 200 for the paths it has, else 404.
type fakeTargets struct {
	have  map[string]string // repo/path -> body
	asked []string
}

func (f *fakeTargets) ServeTarget(w http.ResponseWriter, r *http.Request, repo, name string) int {
	f.asked = append(f.asked, repo+"/"+name)
	body, ok := f.have[repo+"/"+name]
	if !ok {
		http.Error(w, "repository "+repo+" has no "+name, http.StatusNotFound)
		return http.StatusNotFound
	}
	w.Write([]byte(body))
	return http.StatusOK
}

type fakeMirror struct {
	name    string
	targets []tuf.TargetInfo
	version int64
}

func (m *fakeMirror) Name() string              { return m.name }
func (m *fakeMirror) Targets() []tuf.TargetInfo { return m.targets }
func (m *fakeMirror) Status() tuf.Status        { return tuf.Status{TargetsVersion: m.version} }

func newTestServer(t *testing.T, logs *bytes.Buffer) (*Server, *fakeTargets, *fakeMirror) {
	t.Helper()
	ft := &fakeTargets{have: map[string]string{"fw/fw/x.bin": "X", "fw/printers/lp.bin": "LP", "fw/hello.txt": "hi"}}
	fm := &fakeMirror{name: "fw", version: 1, targets: []tuf.TargetInfo{
		{Path: "printers/lp.bin", Custom: json.RawMessage(`{"vendor_urls":["http://print.vendor.example/dl/LP-200.BIN","ftp://x.example/a","http://10.0.0.1/a",7]}`)},
		{Path: "hello.txt", Custom: json.RawMessage(`[1,2]`)},
	}}
	s, err := New(Options{Targets: ft, Mirrors: []Mirror{fm}, AskedMax: 2,
		Hosts:    map[string][]tuf.VendorHost{"fw": {{Host: "updates.vendor.example", PathPrefix: "/firmware/", TargetPrefix: "fw/"}, {Host: "Updates.Vendor.Example"}, {Host: "bücher.example"}}},
		Identify: func(netip.Addr) (string, string) { return "devices", "printer-1" }, Clock: clock.NewFake(time.Unix(1e9, 0)),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, ft, fm
}

func do(h http.Handler, method, host, path, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://x"+path, nil)
	r.Host, r.RemoteAddr = host, remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Each bad input of issue 16 on a vendor listener.
func TestServeBadInput(t *testing.T) {
	var logs bytes.Buffer
	s, _, _ := newTestServer(t, &logs)
	for _, tc := range []struct {
		name, method, host, path string
		status                   int
		body                     string
	}{
		{"configured prefix", "GET", "updates.vendor.example", "/firmware/x.bin", 200, "X"},
		{"host with port", "GET", "updates.vendor.example:80", "/firmware/x.bin", 200, "X"},
		{"upper case and trailing dot", "GET", "UPDATES.VENDOR.EXAMPLE.", "/firmware/x.bin", 200, "X"},
		{"IDN in Unicode", "GET", "BÜCHER.example", "/hello.txt", 200, "hi"},
		{"IDN in punycode with port", "GET", "xn--bcher-kva.example:8080", "/hello.txt", 200, "hi"},
		{"signed vendor_urls", "GET", "print.vendor.example", "/dl/LP-200.BIN", 200, "LP"},
		{"signed URL matches its path only", "GET", "print.vendor.example", "/dl/other.bin", 404, ""},
		{"unknown host: 404 without detail", "GET", "evil.example", "/firmware/x.bin", 404, "not found\n"},
		{"IP address as host", "GET", "10.1.2.3:80", "/firmware/x.bin", 404, "not found\n"},
		{"bracketed IPv6 host", "GET", "[::1]", "/x", 404, "not found\n"},
		{"empty host", "GET", "", "/x", 404, "not found\n"},
		{"mapped host, no target vouches", "GET", "updates.vendor.example", "/nothing.bin", 404, ""},
		{"path escaping the prefix", "GET", "updates.vendor.example", "/firmware/../../etc/passwd", 404, ""},
		{"POST", "POST", "updates.vendor.example", "/firmware/x.bin", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, tc.method, tc.host, tc.path, "192.0.2.7:4000")
			if w.Code != tc.status || tc.body != "" && w.Body.String() != tc.body {
				t.Fatalf("%s %s%s = %d %q, want %d %q", tc.method, tc.host, tc.path, w.Code, w.Body.String(), tc.status, tc.body)
			}
		})
	}
}

func TestUnknownHostLoggedOncePerHostAndDevice(t *testing.T) {
	var logs bytes.Buffer
	s, _, _ := newTestServer(t, &logs)
	for _, remote := range []string{"192.0.2.7:1", "192.0.2.7:2", "192.0.2.8:1", "192.0.2.7:3"} {
		do(s, "GET", "evil.example", "/a", remote)
		do(s, "GET", "evil.example", "/b", remote)
	}
	if n := strings.Count(logs.String(), "host no repository maps"); n != 2 {
		t.Fatalf("logged %d times, want 2 (one per device):\n%s", n, logs.String())
	}
}

func TestAskedRecord(t *testing.T) {
	var logs bytes.Buffer
	s, _, _ := newTestServer(t, &logs)
	fc := s.clock.(*clock.Fake)
	do(s, "GET", "updates.vendor.example", "/a.bin", "192.0.2.7:1")
	fc.Advance(time.Second)
	do(s, "GET", "updates.vendor.example", "/a.bin", "192.0.2.7:2")
	fc.Advance(time.Second)
	do(s, "GET", "updates.vendor.example", "/b.bin", "192.0.2.7:1")
	got := s.Unavailable()
	if len(got) != 2 || got[0].Path != "/b.bin" || got[1].Path != "/a.bin" || got[1].Count != 2 ||
		got[1].Device != (Device{Addr: netip.MustParseAddr("192.0.2.7"), Segment: "devices", Asset: "printer-1"}) {
		t.Fatalf("record = %+v", got)
	}
	fc.Advance(time.Second)
	do(s, "GET", "updates.vendor.example", "/"+strings.Repeat("c", 2000), "[2001:db8::1]:1") // AskedMax 2: /a.bin goes
	got = s.Unavailable()
	if len(got) != 2 || got[1].Path != "/b.bin" || len(got[0].Path) != maxPathBytes || got[0].Device.Addr.String() != "2001:db8::1" {
		t.Fatalf("record after overflow = %+v", got)
	}
	// A path served is never recorded.
	do(s, "GET", "updates.vendor.example", "/firmware/x.bin", "192.0.2.9:1")
	if got := s.Unavailable(); len(got) != 2 {
		t.Fatalf("a served path was recorded: %+v", got)
	}
}

func TestSignedIndexFollowsMirror(t *testing.T) {
	var logs bytes.Buffer
	s, _, fm := newTestServer(t, &logs)
	if st := s.Status(0); st.BadVendorURLs != 3 || strings.Join(st.Hosts, ",") != "print.vendor.example,updates.vendor.example,xn--bcher-kva.example" {
		t.Fatalf("status = %+v, want 3 bad vendor_urls and three hosts", st)
	}
	fm.targets = nil
	fm.version++
	if s.Mapped("print.vendor.example") {
		t.Fatal("print.vendor.example still mapped after its target left the metadata")
	}
}

func TestWrapHandsOtherHostsOn(t *testing.T) {
	var logs bytes.Buffer
	s, _, _ := newTestServer(t, &logs)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := s.Wrap(next)
	if w := do(h, "GET", "127.0.0.1:8080", "/repos/x", "127.0.0.1:1"); w.Code != http.StatusTeapot {
		t.Fatalf("own route: %d", w.Code)
	}
	if w := do(h, "GET", "updates.vendor.example", "/firmware/x.bin", "127.0.0.1:1"); w.Code != 200 {
		t.Fatalf("vendor host through Wrap: %d", w.Code)
	}
}

func TestNewRejectsBadHost(t *testing.T) {
	for _, h := range []string{"", "http://x.example", "x.example:80", "10.0.0.1", "a..b", "-a.example"} {
		if _, err := New(Options{Hosts: map[string][]tuf.VendorHost{"r": {{Host: h}}}}); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}

func TestCertificates(t *testing.T) {
	var logs bytes.Buffer
	s, _, _ := newTestServer(t, &logs)
	dir := t.TempDir()
	ca, err := LoadCA(dir, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, caKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	cfg := s.TLSConfig(ca)
	for _, tc := range []struct {
		name, sni string
		ok        bool
	}{
		{"mapped", "updates.vendor.example", true},
		{"mapped, other case and trailing dot", "Updates.Vendor.Example.", true},
		{"signed", "print.vendor.example", true},
		{"unmapped", "www.example.com", false},
		{"no SNI", "", false},
		{"IP", "10.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.sni})
			if !tc.ok {
				if err == nil {
					t.Fatalf("certificate issued for %q", tc.sni)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Leaf.VerifyHostname(strings.TrimSuffix(strings.ToLower(tc.sni), ".")); err != nil {
				t.Fatal(err)
			}
			if err := c.Leaf.CheckSignatureFrom(ca.cert); err != nil {
				t.Fatalf("leaf not signed by the site CA: %v", err)
			}
		})
	}
	a, _ := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "updates.vendor.example"})
	b, _ := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "updates.vendor.example"})
	s.clock.(*clock.Fake).Advance(leafValidity - leafRenew + time.Hour)
	c, _ := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "updates.vendor.example"})
	if a != b || b == c {
		t.Fatal("leaf not cached, or not renewed before its end")
	}
}

func TestLoadCA(t *testing.T) {
	now := time.Unix(1e9, 0)
	dir := t.TempDir()
	ca, err := LoadCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(dir, now)
	if err != nil || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("second start made another CA (%v)", err)
	}
	other := t.TempDir()
	if _, err := LoadCA(other, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		prepare func(d string)
		want    string
	}{
		{"key missing", func(d string) { os.Remove(filepath.Join(d, caKeyFile)) }, "its key cannot be read"},
		{"key of another CA", func(d string) {
			k, _ := os.ReadFile(filepath.Join(other, caKeyFile))
			os.WriteFile(filepath.Join(d, caKeyFile), k, 0o600)
		}, "is not the ECDSA key"},
		{"certificate garbage", func(d string) { os.WriteFile(filepath.Join(d, caCertFile), []byte("junk"), 0o644) }, "no PEM CERTIFICATE"},
		{"key garbage", func(d string) { os.WriteFile(filepath.Join(d, caKeyFile), []byte("junk"), 0o600) }, "no PEM PRIVATE KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if _, err := LoadCA(d, now); err != nil {
				t.Fatal(err)
			}
			tc.prepare(d)
			_, err := LoadCA(d, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzRequestHost(f *testing.F) {
	for _, s := range []string{"updates.vendor.example", "UPDATES.Vendor.Example.:8080", "bücher.example", "xn--bcher-kva.example",
		"[::1]:80", "10.0.0.1", "", ".", "a..b", "x:y:z", "ex ample.com", "\x00", "ＵＰＤＡＴＥＳ.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := RequestHost(in)
		if err != nil {
			return
		}
		if out == "" || strings.HasSuffix(out, ".") || strings.ContainsAny(out, ":[]/ ") || strings.ToLower(out) != out {
			t.Fatalf("RequestHost(%q) = %q: not canonical", in, out)
		}
		for _, r := range out {
			if r > 0x7e {
				t.Fatalf("RequestHost(%q) = %q: not ASCII", in, out)
			}
		}
		if again, err := RequestHost(out); err != nil || again != out {
			t.Fatalf("RequestHost(%q) = %q, then %q %v: not idempotent", in, out, again, err)
		}
	})
}
