package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512Hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }

// patchEnv is an env whose repository lists one target, path, of 6000 bytes, with the
// metadata verified; it returns the target's bytes and ETag too.
func patchEnv(t *testing.T, path string) (e *env, data []byte, etag string) {
	t.Helper()
	data = bytes.Repeat([]byte("patch "), 1000)
	_, e = oneTargetEnv(t, path, data)
	return e, data, `"` + sha256Hex(data) + `"`
}

func TestServeTarget(t *testing.T) {
	e, data, etag := patchEnv(t, "dir/fix.bin")
	repo := e.repo

	tests := []struct {
		name       string
		method     string
		path       string
		header     []string
		wantStatus int
		wantBody   []byte
	}{
		{"plain path", "GET", "/repos/demo/targets/dir/fix.bin", nil, 200, data},
		{"sha256 prefix", "GET", "/repos/demo/targets/dir/" + sha256Hex(data) + ".fix.bin", nil, 200, data},
		{"sha512 prefix", "GET", "/repos/demo/targets/dir/" + sha512Hex(data) + ".fix.bin", nil, 200, data},
		{"range", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=6-11"}, 206, data[6:12]},
		{"if-none-match", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-None-Match", etag}, 304, nil},
		{"if-range matching", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=0-5", "If-Range", etag}, 206, data[:6]},
		{"if-range stale", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=0-5", "If-Range", `"stale"`}, 200, data},
		{"head", "HEAD", "/repos/demo/targets/dir/fix.bin", nil, 200, nil},
		{"wrong hash prefix", "GET", "/repos/demo/targets/dir/" + sha256Hex([]byte("other")) + ".fix.bin", nil, 404, nil},
		{"unknown target", "GET", "/repos/demo/targets/dir/none.bin", nil, 404, nil},
		{"unknown repo", "GET", "/repos/other/targets/dir/fix.bin", nil, 404, nil},
		{"dot-dot", "GET", "/repos/demo/targets/dir/%2e%2e/fix.bin", nil, 404, nil},
		{"post", "POST", "/repos/demo/targets/dir/fix.bin", nil, 405, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, e.srv.URL+tc.path, tc.header...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d (%s)", tc.method, tc.path, resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 || tc.wantStatus == 206 {
				if !bytes.Equal(body, tc.wantBody) {
					t.Errorf("body differs: got %d bytes, want %d", len(body), len(tc.wantBody))
				}
				if got := resp.Header.Get("ETag"); got != etag {
					t.Errorf("ETag = %s, want %s", got, etag)
				}
			}
			if tc.wantStatus == 404 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("404 Content-Type = %q, want text/plain", resp.Header.Get("Content-Type"))
			}
		})
	}
	if n := repo.TargetGets("dir/fix.bin"); n != 1 {
		t.Errorf("upstream GETs of the target = %d, want 1 (one miss, then hits)", n)
	}
	if hits := metricValue(t, e.reg, "patchgate_cache_hits_total"); hits < 5 {
		t.Errorf("patchgate_cache_hits_total = %v, want >= 5", hits)
	}
}

func TestServeMetadataByteForByte(t *testing.T) {
	repo := tuftest.New(t)
	repo.Delegate("targets", "vendor/a", []string{"v/*"}, false)
	repo.AddTargetContent("vendor/a", "v/x.bin", tuftest.Bytes("x"), nil)
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	for _, name := range []string{"root.json", "1.root.json", "timestamp.json", "2.snapshot.json", "2.targets.json", "1.vendor%2Fa.json", "vendor%2Fa.json"} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.get(t, "/repos/demo/metadata/"+name)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if want := repo.Metadata(name); !bytes.Equal(body, want) {
				t.Errorf("served %s differs from the upstream's bytes", name)
			}
		})
	}
	if resp, _ := e.get(t, "/repos/demo/metadata/7.timestamp.json"); resp.StatusCode != 404 {
		t.Errorf("versioned timestamp: status %d, want 404", resp.StatusCode)
	}
}

type refuseGate struct{}

func (refuseGate) Admit(_ context.Context, r cache.GateRequest) (cache.Decision, func(cache.Served)) {
	if r.Target.Path == "closed.bin" {
		return cache.Decision{Status: 503, RetryAfter: 90 * time.Second, Reason: "window opens at 22:00"}, func(cache.Served) {
			panic("done called for a refused request")
		}
	}
	return cache.Decision{Allow: true}, nil
}

// servedGate admits everything and keeps what the handler reports to done.
type servedGate struct {
	mu     sync.Mutex
	served []cache.Served
}

func (g *servedGate) Admit(context.Context, cache.GateRequest) (cache.Decision, func(cache.Served)) {
	return cache.Decision{Allow: true}, func(s cache.Served) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.served = append(g.served, s)
	}
}

// TestGateDone: the handler calls an admitting gate's done once per request with the
// status and body bytes it sent, and says whether they reached the target's end.
func TestGateDone(t *testing.T) {
	e, data, etag := patchEnv(t, "fix.bin")
	n := int64(len(data))

	tests := []struct {
		name   string
		method string
		path   string
		header []string
		want   cache.Served
	}{
		{"whole", "GET", "fix.bin", nil, cache.Served{Status: 200, Bytes: n, Complete: true}},
		{"whole again (memory)", "GET", "fix.bin", nil, cache.Served{Status: 200, Bytes: n, Complete: true}},
		{"first part", "GET", "fix.bin", []string{"Range", "bytes=0-99"}, cache.Served{Status: 206, Bytes: 100}},
		{"the rest", "GET", "fix.bin", []string{"Range", "bytes=100-"}, cache.Served{Status: 206, Bytes: n - 100, Complete: true}},
		{"the last byte", "GET", "fix.bin", []string{"Range", "bytes=-1"}, cache.Served{Status: 206, Bytes: 1, Complete: true}},
		{"two ranges", "GET", "fix.bin", []string{"Range", "bytes=0-1,5-"}, cache.Served{Status: 206, Bytes: -1}},
		{"head", "HEAD", "fix.bin", nil, cache.Served{Status: 200}},
		{"not modified", "GET", "fix.bin", []string{"If-None-Match", etag}, cache.Served{Status: 304}},
		{"unsatisfiable range", "GET", "fix.bin", []string{"Range", "bytes=99999-"}, cache.Served{Status: 416, Bytes: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &servedGate{}
			h := *e.handler
			h.Gate = g
			req := httptest.NewRequest(tc.method, "/repos/demo/targets/"+tc.path, nil)
			req.RemoteAddr = "192.0.2.7:40000"
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req) // done runs before ServeHTTP returns
			resp, body := rec.Result(), rec.Body.Bytes()
			if len(g.served) != 1 {
				t.Fatalf("%s %s: done called %d times, want once", tc.method, tc.path, len(g.served))
			}
			got := g.served[0]
			if got.Status != resp.StatusCode {
				t.Errorf("Served.Status = %d, the response's is %d", got.Status, resp.StatusCode)
			}
			if tc.want.Bytes < 0 { // the body's size is net/http's business: what was sent
				tc.want.Bytes = int64(len(body))
			}
			if got != tc.want {
				t.Errorf("%s %s %v: Served = %+v, want %+v", tc.method, tc.path, tc.header, got, tc.want)
			}
		})
	}
}

type countingShaper struct {
	mu sync.Mutex
	n  int
}

func (s *countingShaper) Wrap(w http.ResponseWriter, _ *http.Request) (http.ResponseWriter, func()) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return w, func() {}
}

func TestGateAndShaper(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("closed.bin", []byte("secret patch"))
	repo.AddTarget("open.bin", []byte("open patch"))
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	shaper := &countingShaper{}
	e.handler.Gate = refuseGate{}
	e.handler.Shaper = shaper

	resp, body := e.get(t, "/repos/demo/targets/closed.bin")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "90" || !strings.Contains(string(body), "22:00") {
		t.Errorf("refused: status %d, Retry-After %q, body %q; want 503, 90, the reason", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := repo.TargetGets("closed.bin"); n != 0 {
		t.Errorf("a refused request fetched the target upstream %d times", n)
	}
	resp, body = e.get(t, "/repos/demo/targets/open.bin")
	if resp.StatusCode != 200 || string(body) != "open patch" {
		t.Errorf("admitted: status %d body %q", resp.StatusCode, body)
	}
	if shaper.n != 1 {
		t.Errorf("Shaper called %d times, want 1", shaper.n)
	}
}

func TestUpstreamDown(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("cached.bin", []byte("cached"))
	repo.AddTarget("cold.bin", []byte("cold"))
	repo.Publish()

	t.Run("never verified", func(t *testing.T) {
		down := tuftest.New(t)
		down.Server().Close()
		e := newEnv(t, down)
		if err := e.mirror.Refresh(context.Background()); err == nil {
			t.Fatal("Refresh succeeded with the upstream down")
		}
		for _, p := range []string{"/repos/demo/targets/x.bin", "/repos/demo/metadata/timestamp.json"} {
			if resp, body := e.get(t, p); resp.StatusCode != 502 {
				t.Errorf("%s: status %d (%s), want 502", p, resp.StatusCode, body)
			}
		}
	})

	e := newEnv(t, repo)
	e.refresh(t)
	if resp, _ := e.get(t, "/repos/demo/targets/cached.bin"); resp.StatusCode != 200 {
		t.Fatalf("warm-up: status %d", resp.StatusCode)
	}
	repo.Server().Close()
	e.start(t) // restart too: everything must come from disk
	if resp, body := e.get(t, "/repos/demo/targets/cached.bin"); resp.StatusCode != 200 || string(body) != "cached" {
		t.Errorf("cached target with upstream down: status %d body %q", resp.StatusCode, body)
	}
	if resp, body := e.get(t, "/repos/demo/targets/cold.bin"); resp.StatusCode != 502 {
		t.Errorf("cold target with upstream down: status %d (%s), want 502", resp.StatusCode, body)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("slow.bin", []byte("slow"))
	repo.Publish()
	e := newEnv(t, repo, withConfig(func(c *cache.Config) { c.StallTimeout = 50 * time.Millisecond; c.MaxAttempts = 2 }))
	e.refresh(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, p := range repo.TargetPaths("targets", "slow.bin") {
		repo.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select { // send headers, then nothing
			case <-release:
			case <-r.Context().Done():
			}
		}))
	}
	if resp, body := e.get(t, "/repos/demo/targets/slow.bin"); resp.StatusCode != 504 {
		t.Errorf("stalled upstream: status %d (%s), want 504", resp.StatusCode, body)
	}
}

// A repository that lists only sha512: the store key (and ETag) is the sha256
// computed while verifying, and the second request is a hit.
func TestServeSHA512OnlyTarget(t *testing.T) {
	data := []byte("listed with sha512 only")
	repo := tuftest.New(t, tuftest.WithHashes("sha512"))
	repo.AddTarget("only512.bin", data)
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	for i := range 2 {
		resp, body := e.get(t, "/repos/demo/targets/"+sha512Hex(data)+".only512.bin")
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("ETag"), `"`+sha256Hex(data)+`"`; got != want {
			t.Errorf("ETag = %s, want %s", got, want)
		}
	}
	if n := repo.TargetGets("only512.bin"); n != 1 {
		t.Errorf("upstream GETs = %d, want 1", n)
	}
}
