package rollout

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

func TestGateDecisions(t *testing.T) {
	ctx := context.Background()
	addr := func(id string) Request {
		return Request{Repo: "demo", Path: "fw/fw-2.0.bin", Addr: netip.MustParseAddr(deviceAddrs[id])}
	}
	running := func(t *testing.T, v *env, mod func(*RolloutSpec)) *Rollout {
		t.Helper()
		rel := v.release(t, Release{Severity: Critical, KnownExploited: true})
		spec := pilotCore(rel.ID)
		if mod != nil {
			mod(&spec)
		}
		r := v.scheduled(t, spec)
		v.tick(t)
		return r
	}
	inWindow := func(v *env) { v.clk.Set(start.Add(10 * time.Hour)) } // 22:00
	tests := []struct {
		name       string
		setup      func(t *testing.T, v *env) Request
		wantStatus int // 0: serve
		wantRetry  time.Duration
		wantReason string
	}{
		{"a device the inventory does not know", func(t *testing.T, v *env) Request {
			return Request{Repo: "demo", Path: "fw/fw-2.0.bin", Addr: netip.MustParseAddr("10.99.0.1")}
		}, 403, 0, "not in the inventory"},
		{"a device in no ring", func(t *testing.T, v *env) Request { running(t, v, nil); return addr("printer") }, 403, 0, "in no ring"},
		{"a target in no rollout is held", func(t *testing.T, v *env) Request {
			running(t, v, nil)
			r := addr("p1")
			r.Path = "fw/other.bin"
			return r
		}, 403, 0, "held"},
		{"approved, not scheduled: until the window", func(t *testing.T, v *env) Request {
			rel := v.release(t, Release{})
			r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
			must(t)(v.e.Submit(ctx, r.ID, "rita"))
			must(t)(v.e.Approve(ctx, r.ID, "anna", ""))
			return addr("p1")
		}, 503, 10 * time.Hour, "has not started"},
		{"scheduled for later: until the start", func(t *testing.T, v *env) Request {
			rel := v.release(t, Release{})
			r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
			must(t)(v.e.Submit(ctx, r.ID, "rita"))
			must(t)(v.e.Approve(ctx, r.ID, "anna", ""))
			must(t)(v.e.Schedule(ctx, r.ID, "dora", start.Add(30*time.Hour)))
			return addr("p1")
		}, 503, 30 * time.Hour, "has not started"},
		{"pilot device, window closed: until it opens", func(t *testing.T, v *env) Request { running(t, v, nil); return addr("p1") }, 503, 10 * time.Hour, "window closed"},
		{"pilot device in its window", func(t *testing.T, v *env) Request { running(t, v, nil); inWindow(v); return addr("p1") }, 0, 0, ""},
		{"core device while the pilot runs, window closed", func(t *testing.T, v *env) Request { running(t, v, nil); return addr("c1") }, 503, 10 * time.Hour, "waits for ring pilot"},
		{"core device while the pilot runs, window open: recheck", func(t *testing.T, v *env) Request { running(t, v, nil); inWindow(v); return addr("c1") }, 503, 15 * time.Minute, "waits for ring pilot"},
		{"pre-staging stage outside the window", func(t *testing.T, v *env) Request {
			running(t, v, func(s *RolloutSpec) { s.Stages[0].Prestage = true })
			return addr("p1")
		}, 0, 0, ""},
		{"paused", func(t *testing.T, v *env) Request {
			r := running(t, v, nil)
			inWindow(v)
			must(t)(v.e.Pause(ctx, r.ID, "dora", "vendor recalled it"))
			return addr("p1")
		}, 503, 15 * time.Minute, "vendor recalled it"},
		{"halted: held", func(t *testing.T, v *env) Request {
			r := running(t, v, nil)
			must(t)(v.e.Halt(ctx, r.ID, "dora", "bad"))
			return addr("p1")
		}, 403, 0, "held"},
		{"approved emergency skips the window", func(t *testing.T, v *env) Request {
			running(t, v, func(s *RolloutSpec) { s.Emergency = true })
			return addr("p1")
		}, 0, 0, ""},
		{"no window applies to the ring", func(t *testing.T, v *env) Request {
			ws := must(t)(v.e.Windows(ctx)).([]Window)
			if err := v.e.DeleteWindow(ctx, "dora", ws[0].ID); err != nil {
				t.Fatal(err)
			}
			must(t)(v.e.AddWindow(ctx, "dora", Window{Name: "core only", Cron: "0 22 * * *", Duration: Duration(time.Hour), Zone: "UTC", Ring: "core"}))
			running(t, v, nil)
			return addr("p1")
		}, 503, 15 * time.Minute, "no maintenance window applies to ring pilot"},
		{"a segment's own window", func(t *testing.T, v *env) Request {
			must(t)(v.e.AddWindow(ctx, "dora", Window{Name: "clinical lunch", Cron: "0 12 * * *", Duration: Duration(time.Hour), Zone: "UTC", Segment: "clinical"}))
			running(t, v, nil)
			return addr("p1") // 12:00, in the clinical segment
		}, 0, 0, ""},
		{"a bad agent credential", func(t *testing.T, v *env) Request {
			r := addr("p1")
			r.Authorization = "Bearer pga1.ag-0000000000000000.nope"
			return r
		}, 401, 0, "credential"},
		{"an agent the inventory does not know, in its token's ring", func(t *testing.T, v *env) Request {
			running(t, v, nil)
			inWindow(v)
			tok, _, _ := v.e.CreateToken(ctx, "dora", "t", "pilot", nil, time.Hour, 1)
			_, cred, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: "laptop"}, netip.MustParseAddr("192.0.2.7"))
			if err != nil {
				t.Fatal(err)
			}
			return Request{Repo: "demo", Path: "fw/fw-2.0.bin", Addr: netip.MustParseAddr("192.0.2.7"), Authorization: "Bearer " + cred}
		}, 0, 0, ""},
		{"concurrency limit reached", func(t *testing.T, v *env) Request {
			running(t, v, func(s *RolloutSpec) { s.Stages[0].MaxConcurrent = 1 })
			inWindow(v)
			if d := v.decide(deviceAddrs["p1"]); !d.Allow {
				t.Fatalf("first download refused: %+v", d)
			}
			if d := v.decide(deviceAddrs["p1"]); !d.Allow {
				t.Fatalf("the same device resuming refused: %+v", d)
			}
			return addr("p2")
		}, 503, time.Minute, "1 downloads in progress in ring pilot (limit 1)"},
		{"concurrency: a stale download stops counting", func(t *testing.T, v *env) Request {
			running(t, v, func(s *RolloutSpec) { s.Stages[0].MaxConcurrent = 1 })
			inWindow(v)
			v.decide(deviceAddrs["p1"])
			v.clk.Advance(2*time.Hour + time.Second)
			return addr("p2")
		}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t)
			v.devices()
			req := tt.setup(t, v)
			d := v.e.Gate().Decide(ctx, req)
			if tt.wantStatus == 0 {
				if !d.Allow {
					t.Fatalf("Decide = %+v, want serve", d)
				}
				return
			}
			if d.Allow || d.Status != tt.wantStatus || d.RetryAfter != tt.wantRetry || !strings.Contains(d.Reason, tt.wantReason) {
				t.Fatalf("Decide = %+v, want %d, Retry-After %v, reason containing %q", d, tt.wantStatus, tt.wantRetry, tt.wantReason)
			}
		})
	}
}

// TestGateThroughCache puts the gate in front of the real cache over a real TUF
// repository (tuftest): a refused device gets no byte and a Retry-After, an admitted
// one the verified target, and a completed download counts as delivered; an
// interrupted one does not.
func TestGateThroughCache(t *testing.T) {
	content := strings.Repeat("firmware 2.0 ", 5000)
	repo := tuftest.New(t)
	repo.AddTarget("fw/fw-2.0.bin", []byte(content))
	repo.Publish()
	v := newEnv(t)
	v.devices()
	srv := cacheServer(t, repo, v.e.Gate())
	rel := v.release(t, Release{})
	r := v.scheduled(t, pilotCore(rel.ID))
	v.tick(t)

	get := func(addr, rangeHdr string) *http.Response {
		t.Helper()
		req := httptest.NewRequest("GET", srv.url+"/repos/demo/targets/fw/fw-2.0.bin", nil)
		req.RemoteAddr = addr + ":40000"
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		rec := httptest.NewRecorder()
		srv.h.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := get(deviceAddrs["p1"], "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "36000" {
		t.Fatalf("outside the window: %d Retry-After %q, want 503 36000", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	v.clk.Set(start.Add(10 * time.Hour))
	// An interrupted download (first half) is not a delivery; the resumed rest is.
	resp = get(deviceAddrs["p1"], "bytes=0-99")
	if resp.StatusCode != 206 {
		t.Fatalf("range in the window: %d", resp.StatusCode)
	}
	if d := v.deployment(t, r.ID, "p1"); d.State != DepDownloading {
		t.Fatalf("after a partial download: %s, want downloading", d.State)
	}
	resp = get(deviceAddrs["p1"], "bytes=100-")
	if resp.StatusCode != 206 {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	if d := v.deployment(t, r.ID, "p1"); d.State != DepDownloaded || len(d.Delivered) != 1 {
		t.Fatalf("after the rest: %s delivered %v, want downloaded", d.State, d.Delivered)
	}
	resp = get(deviceAddrs["p2"], "")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(content)) {
		t.Fatalf("whole download: %d length %d", resp.StatusCode, resp.ContentLength)
	}
	if d := v.deployment(t, r.ID, "p2"); d.State != DepDownloaded {
		t.Fatalf("after a whole download: %s, want downloaded", d.State)
	}
	if resp := get(deviceAddrs["c1"], ""); resp.StatusCode != 503 {
		t.Fatalf("core device: %d, want 503", resp.StatusCode)
	}
	if got := value(t, v.e.met.gate.WithLabelValues("serve")); got != 3 {
		t.Errorf("patchgate_rollout_gate_decisions_total{decision=serve} = %v, want 3", got)
	}
}

type cacheSrv struct {
	url string
	h   http.Handler
}

// cacheServer is the cache package's Handler over a mirror of repo, with gate, wrapped
// in gate.Track as the appliance wires it.
func cacheServer(t *testing.T, repo *tuftest.Repo, gate *Gate) cacheSrv {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, m := newCache(t, repo, reg)
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := gate.Track(&cacheHandler{Cache: c, Gate: gate})
	return cacheSrv{url: "http://patchgate.test", h: h}
}

type cacheHandler = cache.Handler

// newCache is a real cache over a mirror named "demo" of repo.
func newCache(t *testing.T, repo *tuftest.Repo, reg *prometheus.Registry) (*cache.Cache, *tuf.Mirror) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: repo.MetadataURL(), TargetsURL: repo.TargetsURL(),
		TrustedRoot: repo.Root(), StateDir: t.TempDir(), Retries: 1, RetryBackoff: time.Millisecond}, tuf.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Dir: t.TempDir(), RetryBackoff: time.Millisecond, StallTimeout: 5 * time.Second}, []*tuf.Mirror{m},
		cache.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, m
}
