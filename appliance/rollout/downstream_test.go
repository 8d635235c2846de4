package rollout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/vendorhost"
)

// TestGateDownstream: a downstream appliance (enrolled with a token tagged
// DownstreamTag) gets any target of an approved rollout at once, whatever the rings,
// windows and stage limits say, and without a deployment; held targets and revoked
// children are refused as for devices.
func TestGateDownstream(t *testing.T) {
	ctx := context.Background()
	child := netip.MustParseAddr("192.0.2.50")
	enrol := func(t *testing.T, v *env, ring string, tags []string) (*Agent, string) {
		t.Helper()
		tok, _, err := v.e.CreateToken(ctx, "dora", "child north", ring, tags, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		ag, cred, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: "north", OS: "patchgate"}, child)
		if err != nil {
			t.Fatal(err)
		}
		return ag, cred
	}
	req := func(cred, path string) Request {
		return Request{Repo: "demo", Path: path, Addr: child, Authorization: "Bearer " + cred}
	}
	approved := func(t *testing.T, v *env) *Rollout {
		t.Helper()
		rel := v.release(t, Release{})
		r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
		must(t)(v.e.Submit(ctx, r.ID, "rita"))
		must(t)(v.e.Approve(ctx, r.ID, "anna", ""))
		return r
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, v *env) Request
		wantStatus int // 0: serve
		wantReason string
	}{
		{"approved, not started, window closed: served to a child", func(t *testing.T, v *env) Request {
			approved(t, v)
			_, cred := enrol(t, v, "", []string{DownstreamTag})
			return req(cred, "fw/fw-2.0.bin")
		}, 0, ""},
		{"the same request from an ordinary agent waits", func(t *testing.T, v *env) Request {
			approved(t, v)
			_, cred := enrol(t, v, "pilot", []string{"laptop"})
			return req(cred, "fw/fw-2.0.bin")
		}, 503, "has not started"},
		{"stage limit full: the child does not count", func(t *testing.T, v *env) Request {
			rel := v.release(t, Release{})
			spec := pilotCore(rel.ID)
			spec.Stages[0].MaxConcurrent = 1
			v.scheduled(t, spec)
			v.tick(t)
			v.clk.Set(start.Add(10 * time.Hour))
			if d := v.decide(deviceAddrs["p1"]); !d.Allow {
				t.Fatalf("device download refused: %+v", d)
			}
			_, cred := enrol(t, v, "", []string{DownstreamTag})
			return req(cred, "fw/fw-2.0.bin")
		}, 0, ""},
		{"held target", func(t *testing.T, v *env) Request {
			approved(t, v)
			_, cred := enrol(t, v, "", []string{DownstreamTag})
			return req(cred, "fw/other.bin")
		}, 403, "downstream appliance"},
		{"revoked child", func(t *testing.T, v *env) Request {
			approved(t, v)
			ag, cred := enrol(t, v, "", []string{DownstreamTag})
			if err := v.e.RevokeAgent(ctx, "dora", ag.ID); err != nil {
				t.Fatal(err)
			}
			return req(cred, "fw/fw-2.0.bin")
		}, 401, "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t)
			v.devices()
			r := tt.setup(t, v)
			d, done := v.e.Gate().Admit(ctx, r)
			if tt.wantStatus == 0 {
				if !d.Allow || done != nil || d.DeploymentID != 0 {
					t.Fatalf("Admit = %+v (done %v), want serve without a deployment", d, done != nil)
				}
				return
			}
			if d.Allow || d.Status != tt.wantStatus || !strings.Contains(d.Reason, tt.wantReason) {
				t.Fatalf("Admit = %+v, want %d with a reason containing %q", d, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// TestGateClientCertificate: over the agent TLS listener the gate checks a child's (or
// agent's) client certificate on target downloads as the agent API does: it must name
// the credential's agent; with certificates required one must be presented; over plain
// http (no TLS state) the credential alone admits.
func TestGateClientCertificate(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	v.devices()
	ca, err := vendorhost.LoadCA(t.TempDir(), v.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	v.e.SetClientCA(ClientCAConfig{CA: ca, Require: true})
	rel := v.release(t, Release{})
	r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
	must(t)(v.e.Submit(ctx, r.ID, "rita"))
	must(t)(v.e.Approve(ctx, r.ID, "anna", ""))
	tok, _, err := v.e.CreateToken(ctx, "dora", "children", "", []string{DownstreamTag}, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.50")
	north, cred, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: "north", OS: "patchgate"}, addr)
	if err != nil {
		t.Fatal(err)
	}
	south, _, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: "south", OS: "patchgate"}, addr)
	if err != nil {
		t.Fatal(err)
	}
	certFor := func(id string) *tls.ConnectionState {
		key, req := csr(t)
		pemCert, err := ca.SignClient([]byte(req), id, v.clk.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c := pair(t, key, string(pemCert))
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
	}
	tests := []struct {
		name       string
		tls        *tls.ConnectionState
		wantStatus int // 0: serve
		wantReason string
	}{
		{"its own certificate", certFor(north.ID), 0, ""},
		{"plain http: the credential admits", nil, 0, ""},
		{"another child's certificate", certFor(south.ID), 401, "belongs to another agent"},
		{"no certificate where required", &tls.ConnectionState{}, 401, "client certificate is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := v.e.Gate().Decide(ctx, Request{Repo: "demo", Path: "fw/fw-2.0.bin", Addr: addr, Authorization: "Bearer " + cred, TLS: tt.tls})
			if tt.wantStatus == 0 {
				if !d.Allow || d.Child != north.ID {
					t.Fatalf("Decide = %+v, want serve to child %s", d, north.ID)
				}
				return
			}
			if d.Allow || d.Status != tt.wantStatus || !strings.Contains(d.Reason, tt.wantReason) {
				t.Fatalf("Decide = %+v, want %d with a reason containing %q", d, tt.wantStatus, tt.wantReason)
			}
		})
	}
}
