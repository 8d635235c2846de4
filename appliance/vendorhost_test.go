package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/cache"
)

// holdGate refuses every target while hold is set, like the rollout gate outside a window.
type holdGate struct{ hold *atomic.Bool }

func (g holdGate) Admit(context.Context, cache.GateRequest) (cache.Decision, func(cache.Served)) {
	if g.hold.Load() {
		return cache.Decision{Status: http.StatusServiceUnavailable, RetryAfter: 90 * time.Second, Reason: "outside the window"}, nil
	}
	return cache.Decision{Allow: true}, nil
}

func vendorGet(t *testing.T, c *http.Client, method, url, host string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// startVendorSystem runs the dev config (with the vendor HTTPS listener) and waits
// until the demo repository serves; gate, if set, is the cache's serving gate. It
// returns the system and the distribution listener's base URL.
func startVendorSystem(t *testing.T, gate cache.Gate) (*System, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.VendorHost.HTTPSListen = "127.0.0.1:0"
	sys, err := New(context.Background(), cfg, Options{Build: Build{Version: "test"}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if gate != nil {
		sys.updates.handler.Gate = gate
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sys.Close() })
	waitReady(t, sys)
	base := "http://" + sys.DistributionAddr()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp := get(t, base+"/repos/demo/targets/hello.txt"); resp.StatusCode == http.StatusOK {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("GET demo target = %d", resp.StatusCode)
		}
	}
	return sys, base
}

// configs/dev.yaml maps updates.vendor.example to the demo repository: a device asking
// the distribution listener for http://updates.vendor.example/hello.txt gets the verified
// demo target (also over HTTPS with the site CA), an unmapped path 404 and a row in the
// "asked for, not available" record, and a held gate 503 with Retry-After (issue 16).
func TestVendorHostOnStartedSystem(t *testing.T) {
	var hold atomic.Bool
	sys, base := startVendorSystem(t, holdGate{&hold})
	want := demoTargets[0].content
	c := http.DefaultClient
	for _, tc := range []struct {
		name, method, host, path string
		hdr                      []string
		status                   int
		body                     string
	}{
		{"plain", "GET", "updates.vendor.example", "/hello.txt", nil, 200, want},
		{"port, upper case, trailing dot", "GET", "UPDATES.Vendor.Example.:8080", "/hello.txt", nil, 200, want},
		{"range", "GET", "updates.vendor.example", "/hello.txt", []string{"Range", "bytes=0-4"}, 206, "Hello"},
		{"if-range mismatch sends all", "GET", "updates.vendor.example", "/hello.txt", []string{"Range", "bytes=0-4", "If-Range", `"nope"`}, 200, want},
		{"head", "HEAD", "updates.vendor.example", "/hello.txt", nil, 200, ""},
		{"no target vouches", "GET", "updates.vendor.example", "/firmware/x.bin", nil, 404, ""},
		{"unmapped host keeps the listener's routes", "GET", "other.example", "/hello.txt", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := vendorGet(t, c, tc.method, base+tc.path, tc.host, tc.hdr...)
			if resp.StatusCode != tc.status || tc.body != "" && body != tc.body {
				t.Fatalf("status %d body %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.method == "HEAD" && resp.ContentLength != int64(len(want)) {
				t.Fatalf("HEAD Content-Length %d, want %d", resp.ContentLength, len(want))
			}
		})
	}
	hold.Store(true)
	if resp, _ := vendorGet(t, c, "GET", base+"/hello.txt", "updates.vendor.example"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "90" {
		t.Fatalf("held gate: %d Retry-After %q, want 503 90", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	hold.Store(false)

	// The record, through the admin API (inventory.read: a viewer's token).
	resp, body := vendorGet(t, c, "GET", "http://"+sys.AdminAddr()+"/api/v1/vendorhost", sys.AdminAddr(),
		"Authorization", apiToken(t, sys, auth.Viewer))
	var st vendorhost.Status
	if err := json.Unmarshal([]byte(body), &st); resp.StatusCode != 200 || err != nil {
		t.Fatalf("/api/v1/vendorhost = %d %v: %s", resp.StatusCode, err, body)
	}
	if len(st.Asked) != 1 || st.Asked[0].Host != "updates.vendor.example" || st.Asked[0].Path != "/firmware/x.bin" ||
		st.Asked[0].Device.Addr.String() != "127.0.0.1" || st.Asked[0].Device.Segment != "loopback" {
		t.Fatalf("asked record = %+v, want one row for 127.0.0.1 (loopback) updates.vendor.example/firmware/x.bin", st.Asked)
	}

	// HTTPS with the site CA, downloaded from the distribution listener.
	_, caPEM := vendorGet(t, c, "GET", base+"/vendorhost/ca.pem", sys.DistributionAddr())
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("ca.pem is no certificate: %q", caPEM)
	}
	var httpsAddr string
	for _, svc := range sys.services {
		if h, ok := svc.(*httpService); ok && h.name == "vendor-https" {
			httpsAddr = h.Addr()
		}
	}
	for _, tc := range []struct {
		name, sni string
		ok        bool
	}{
		{"mapped name", "updates.vendor.example", true},
		{"unmapped name gets no certificate", "www.example.com", false},
	} {
		t.Run("https "+tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: tc.sni}}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("GET", "https://"+httpsAddr+"/hello.txt", nil)
			req.Host = tc.sni
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("handshake for %s succeeded, want refused", tc.sni)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET over HTTPS: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("HTTPS: %d %q", resp.StatusCode, body)
			}
		})
	}
	if strings.TrimSpace(st.CAFingerprint) == "" {
		t.Error("status has no CA fingerprint")
	}
}

// A row of the "asked for, not available" list becomes a candidate in one POST: the
// vendor's file is checked once against the sha256 the admin pins and staged as a
// candidate of a source named after the host. A row not in the list, a bad pin, a
// download that does not verify, a viewer, and a cross-origin form are refused.
func TestAskedForBecomesCandidate(t *testing.T) {
	sys, base := startVendorSystem(t, nil)
	fw := []byte("LP-200 firmware 2.5.0, from the vendor\n")
	vendor := serveFile(t, "/firmware/x.bin", fw)
	if resp, _ := vendorGet(t, http.DefaultClient, "GET", base+"/firmware/x.bin", "updates.vendor.example"); resp.StatusCode != 404 {
		t.Fatalf("asked for an unavailable path: %d, want 404", resp.StatusCode)
	}
	sum := sha256.Sum256(fw)
	pin := hex.EncodeToString(sum[:])
	requester, viewer := apiToken(t, sys, auth.Requester), apiToken(t, sys, auth.Viewer)
	post := func(token, ctype, body string, hdr ...string) (int, string) {
		t.Helper()
		return fetch(t, "POST", "http://"+sys.AdminAddr()+"/api/v1/vendorhost/asked/candidate", strings.NewReader(body),
			append([]string{"Authorization", token, "Content-Type", ctype, "Accept", "application/json"}, hdr...)...)
	}
	js := func(host, path, url, sha string) string {
		b, _ := json.Marshal(map[string]string{"host": host, "path": path, "url": url, "sha256": sha})
		return string(b)
	}
	const host, path = "updates.vendor.example", "/firmware/x.bin"
	for _, tc := range []struct {
		name, token, ctype, body string
		hdr                      []string
		status                   int
		want                     string
	}{
		{"not in the list", requester, "application/json", js(host, "/firmware/other.bin", vendor.URL+path, pin), nil, 404, "not in the asked-for list"},
		{"bad pin", requester, "application/json", js(host, path, vendor.URL+path, "xyz"), nil, 400, "sha256"},
		{"does not verify", requester, "application/json", js(host, path, vendor.URL+path, strings.Repeat("0", 64)), nil, 422, "did not verify"},
		{"viewer", viewer, "application/json", js(host, path, vendor.URL+path, pin), nil, 403, ""},
		{"cross-origin form", requester, "application/x-www-form-urlencoded", "host=" + host + "&path=" + path + "&sha256=" + pin + "&url=" + vendor.URL + path,
			[]string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403, ""},
		{"verified", requester, "application/json", js("UPDATES.vendor.example.", path, vendor.URL+path, pin), nil, 201, `"new_last_check": 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.token, tc.ctype, tc.body, tc.hdr...)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("POST = %d %s, want %d containing %q", code, body, tc.status, tc.want)
			}
		})
	}
	_, body := vendorGet(t, http.DefaultClient, "GET", "http://"+sys.AdminAddr()+"/api/v1/candidates?source="+host, sys.AdminAddr(), "Authorization", requester)
	var cs []supply.Candidate
	if err := json.Unmarshal([]byte(body), &cs); err != nil || len(cs) != 1 || cs[0].Name != "x.bin" || cs[0].SHA256 != pin {
		t.Fatalf("candidates of %s: %v %s, want x.bin", host, err, body)
	}
}

// Range, If-Range and HEAD on a vendor URL behave as on /repos/ (issue 16, bad input):
// the same request for the same target gets the same status, body and range headers
// from http://updates.vendor.example/hello.txt and /repos/demo/targets/hello.txt.
func TestVendorHostRangeAsOnRepos(t *testing.T) {
	_, base := startVendorSystem(t, nil)
	c := http.DefaultClient
	resp, _ := vendorGet(t, c, "GET", base+"/repos/demo/targets/hello.txt", "127.0.0.1")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("/repos/ sends no ETag: the If-Range cases need one")
	}
	for _, tc := range []struct {
		name, method string
		hdr          []string
	}{
		{"whole", "GET", nil},
		{"range", "GET", []string{"Range", "bytes=0-4"}},
		{"suffix range", "GET", []string{"Range", "bytes=-6"}},
		{"unsatisfiable range", "GET", []string{"Range", "bytes=100000-"}},
		{"malformed range", "GET", []string{"Range", "bytes=x-y"}},
		{"if-range matching etag", "GET", []string{"Range", "bytes=0-4", "If-Range", etag}},
		{"if-range with a date", "GET", []string{"Range", "bytes=0-4", "If-Range", "Mon, 02 Mar 2026 10:00:00 GMT"}},
		{"if-range other etag", "GET", []string{"Range", "bytes=0-4", "If-Range", `"nope"`}},
		{"head", "HEAD", nil},
		{"head with range", "HEAD", []string{"Range", "bytes=0-4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantBody := vendorGet(t, c, tc.method, base+"/repos/demo/targets/hello.txt", "127.0.0.1", tc.hdr...)
			got, body := vendorGet(t, c, tc.method, base+"/hello.txt", "updates.vendor.example", tc.hdr...)
			if got.StatusCode != want.StatusCode || body != wantBody {
				t.Fatalf("vendor URL: %d %q; /repos/: %d %q", got.StatusCode, body, want.StatusCode, wantBody)
			}
			for _, h := range []string{"Content-Range", "Content-Length", "Accept-Ranges", "ETag"} {
				if got.Header.Get(h) != want.Header.Get(h) {
					t.Errorf("%s: vendor URL %q, /repos/ %q", h, got.Header.Get(h), want.Header.Get(h))
				}
			}
		})
	}
}
