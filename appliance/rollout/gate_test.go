package rollout

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
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

// TestGateAdmitDone: a refused device gets a Retry-After and no done callback; an
// admitted one a done callback, and a completed download counts as delivered; an
// interrupted one does not. (The cache reports "complete": cache.TestGateDone; the
// appliance wires the two: appliance.TestRolloutWiring.)
func TestGateAdmitDone(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.pilotCoreRollout(t, Release{})
	v.tick(t)

	admit := func(t *testing.T, id string) (Decision, func(bool)) {
		t.Helper()
		return v.e.Gate().Admit(ctx, Request{Repo: "demo", Path: "fw/fw-2.0.bin", Addr: netip.MustParseAddr(deviceAddrs[id])})
	}
	d, done := admit(t, "p1")
	if d.Allow || d.Status != 503 || d.RetryAfter != 10*time.Hour || done != nil {
		t.Fatalf("outside the window: %+v (done %v), want 503 Retry-After 10h (36000 s) and no done", d, done != nil)
	}
	v.clk.Set(start.Add(10 * time.Hour))
	// download admits id's request, finishes it (complete or not) and wants the
	// deployment in state want after.
	download := func(what, id string, complete bool, want DeploymentState) *Deployment {
		t.Helper()
		d, done := admit(t, id)
		if !d.Allow || done == nil {
			t.Fatalf("%s in the window: %+v (done %v), want allowed with done", what, d, done != nil)
		}
		done(complete)
		dep := v.deployment(t, r.ID, id)
		if dep.State != want {
			t.Fatalf("after %s: %s, want %s", what, dep.State, want)
		}
		return dep
	}
	// An interrupted download (first half) is not a delivery; the resumed rest is.
	download("a partial download", "p1", false, DepDownloading)
	if dep := download("the resumed rest", "p1", true, DepDownloaded); len(dep.Delivered) != 1 {
		t.Fatalf("after the rest: delivered %v, want the target", dep.Delivered)
	}
	download("a whole download", "p2", true, DepDownloaded)
	if d, done := admit(t, "c1"); d.Status != 503 || done != nil {
		t.Fatalf("core device: %+v (done %v), want 503 and no done", d, done != nil)
	}
	if got := value(t, v.e.met.gate.WithLabelValues("serve")); got != 3 {
		t.Errorf("patchgate_rollout_gate_decisions_total{decision=serve} = %v, want 3", got)
	}
}
