package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// fakeParent answers enrolment and check-in as a parent's agent API does: its token
// has uses tokens left, each enrolment makes a new agent (ag-1, ag-2, ...), and a
// revoked agent's credential is refused.
type fakeParent struct {
	mu      sync.Mutex
	srv     *httptest.Server
	uses    int             // of the token pge1.tok.secret
	agents  int             // enrolled so far
	revoked map[string]bool // credentials
	skew    time.Duration   // the parent's clock minus the child's
	clk     *clock.Fake     // the child's clock; the parent's is clk + skew
	authz   []string        // Authorization of every request but enrolment
}

func newFakeParent(t *testing.T, clk *clock.Fake) *fakeParent {
	p := &fakeParent{clk: clk, uses: 1, revoked: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Date", p.clk.Now().Add(p.skew).UTC().Format(http.TimeFormat))
		authz := r.Header.Get("Authorization")
		valid := strings.HasPrefix(authz, "Bearer pga1.ag-") && strings.HasSuffix(authz, ".s3cret") && !p.revoked[strings.TrimPrefix(authz, "Bearer ")]
		switch r.URL.Path {
		case "/agent/v1/enroll":
			var req agentapi.EnrollRequest
			if json.NewDecoder(r.Body).Decode(&req) != nil || req.Token != "pge1.tok.secret" || req.Hostname != "north" || p.uses == 0 {
				http.Error(w, `{"error": "bad token"}`, http.StatusUnauthorized)
				return
			}
			p.uses--
			p.agents++
			id := fmt.Sprintf("ag-%d", p.agents)
			json.NewEncoder(w).Encode(agentapi.EnrollResponse{AgentID: id, Credential: "pga1." + id + ".s3cret", PollIntervalSeconds: 300})
		case "/agent/v1/checkin":
			p.authz = append(p.authz, authz)
			if !valid {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error": "unknown, expired or revoked credential"}`))
				return
			}
			w.Write([]byte(`{}`))
		default:
			p.authz = append(p.authz, authz)
			if !valid {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte("target"))
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// revoke revokes agent id's credential.
func (p *fakeParent) revoke(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked["pga1."+id+".s3cret"] = true
}

func newLink(t *testing.T, clk *clock.Fake, url, token, stateDir string, expiry time.Time) *Link {
	t.Helper()
	p := DefaultParent()
	p.URL, p.Repositories, p.Roots, p.EnrolToken = url, []string{"vendor"}, "/roots", conf.Secret(token)
	l, err := New(Options{Parent: p, Site: "north", Version: "test", StateDir: stateDir, Clock: clk,
		Logger: slog.New(slog.DiscardHandler), Expiry: func() time.Time { return expiry }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func codes(ps []health.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code+":"+p.Severity.String())
	}
	return out
}

func TestLinkEnrolsOnceAndAuthenticates(t *testing.T) {
	clk := clock.NewFake(t0)
	p := newFakeParent(t, clk)
	dir := t.TempDir()
	l := newLink(t, clk, p.srv.URL, "pge1.tok.secret", dir, t0.Add(24*time.Hour))
	if err := l.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if l.AgentID() != "ag-1" || len(l.Health()) != 0 {
		t.Fatalf("after enrolment: id %q, health %v", l.AgentID(), l.Health())
	}
	fi, err := os.Stat(filepath.Join(dir, "credential.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v, want mode 0600", fi, err)
	}
	// A restart loads the credential and does not enrol again (the token is spent).
	l2 := newLink(t, clk, p.srv.URL, "", dir, t0.Add(24*time.Hour))
	if err := l2.Check(context.Background()); err != nil || l2.AgentID() != "ag-1" {
		t.Fatalf("after a restart: %v, id %q", err, l2.AgentID())
	}
	// The transport puts the credential on requests to the parent only.
	c := &http.Client{Transport: l2.Transport(nil)}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			t.Errorf("another host got Authorization %q", a)
		}
	}))
	defer other.Close()
	for _, u := range []string{p.srv.URL + "/repos/vendor/targets/a.bin", other.URL + "/x"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if last := p.authz[len(p.authz)-1]; last != "Bearer pga1.ag-1.s3cret" {
		t.Errorf("target request to the parent: Authorization %q", last)
	}
}

func TestLinkBadInput(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		run      func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link)
		token    string
		want     []string
		wantText string
	}{
		{"no token, no credential", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) { l.Check(ctx) },
			"", []string{"parent-not-enrolled:error"}, "set parent.enrol_token"},
		{"bad token", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) { l.Check(ctx) },
			"pge1.tok.wrong", []string{"parent-enrolment-refused:error"}, "refused parent.enrol_token"},
		{"revoked credential, token spent", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
			p.revoke("ag-1")
			l.Check(ctx)
		}, "pge1.tok.secret", []string{"parent-reenrolment-needed:error"}, "re-enrolment needed: parent http://127.0.0.1"},
		{"revoked credential, no token", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
			p.revoke("ag-1")
			l.opts.Parent.EnrolToken = "" // spent and removed from the config
			l.Check(ctx)
		}, "pge1.tok.secret", []string{"parent-reenrolment-needed:error"}, "(ag-1): it was revoked, rotated or is unknown there, and parent.enrol_token is empty"},
		{"parent down for a day, metadata still valid", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
			p.srv.Close()
			clk.Advance(24 * time.Hour)
			l.Check(ctx)
		}, "pge1.tok.secret", []string{"parent-unreachable:warning"},
			"it last answered at 2026-03-02T12:00:00Z, 24h0m0s ago; serving what was verified until its metadata expires at 2026-03-09T12:00:00Z (in 144h0m0s)"},
		{"parent down past the expiry", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
			p.srv.Close()
			clk.Advance(8 * 24 * time.Hour)
			l.Check(ctx)
		}, "pge1.tok.secret", []string{"parent-unreachable:error"}, "expired at 2026-03-09T12:00:00Z: its targets are no longer served"},
		{"child clock ahead", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			p.skew = -5 * time.Minute
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
		}, "pge1.tok.secret", []string{"parent-clock-skew:warning"}, "clock is 5m0s ahead of parent"},
		{"child clock behind", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			p.skew = 2 * time.Hour
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
		}, "pge1.tok.secret", []string{"parent-clock-skew:warning"}, "clock is 2h0m0s behind parent"},
		{"small skew is fine", func(t *testing.T, clk *clock.Fake, p *fakeParent, l *Link) {
			p.skew = 30 * time.Second
			if err := l.Check(ctx); err != nil {
				t.Fatal(err)
			}
		}, "pge1.tok.secret", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			p := newFakeParent(t, clk)
			l := newLink(t, clk, p.srv.URL, tt.token, t.TempDir(), t0.Add(7*24*time.Hour))
			tt.run(t, clk, p, l)
			hs := l.Health()
			if got := codes(hs); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("health %v, want %v (%+v)", got, tt.want, hs)
			}
			if tt.wantText != "" && !strings.Contains(hs[0].Text, tt.wantText) {
				t.Errorf("health text %q lacks %q", hs[0].Text, tt.wantText)
			}
		})
	}
}

func FuzzParseCredential(f *testing.F) {
	f.Add([]byte(`{"parent":"http://p:8080","agent_id":"ag-1","credential":"pga1.ag-1.x"}`))
	f.Add([]byte(`{"parent":"","agent_id":"","credential":""}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCredential(data)
		if err == nil && (c.AgentID == "" || !strings.HasPrefix(c.Credential, "pga1."+c.AgentID+".")) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// TestLinkReenrolsAfter401: a credential revoked or rotated on the parent is replaced
// at the next check-in while the token has uses left; a 401 to a mirror's request
// makes the link check in at once.
func TestLinkReenrolsAfter401(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	p := newFakeParent(t, clk)
	p.uses = 2
	l := newLink(t, clk, p.srv.URL, "pge1.tok.secret", t.TempDir(), t0.Add(24*time.Hour))
	if err := l.Check(ctx); err != nil || l.AgentID() != "ag-1" {
		t.Fatalf("enrolment: %v, id %q", err, l.AgentID())
	}
	p.revoke("ag-1")
	c := &http.Client{Transport: l.Transport(nil)}
	resp, err := c.Get(p.srv.URL + "/repos/vendor/targets/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("revoked credential: %d", resp.StatusCode)
	}
	select {
	case <-l.kick:
	default:
		t.Fatal("a 401 from the parent did not ask for a check-in")
	}
	if err := l.Check(ctx); err != nil || l.AgentID() != "ag-2" || len(l.Health()) != 0 {
		t.Fatalf("after the revocation: %v, id %q, health %v", err, l.AgentID(), l.Health())
	}
	resp, err = c.Get(p.srv.URL + "/repos/vendor/targets/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the new credential: %d", resp.StatusCode)
	}
	// The new credential is kept: a restart uses it.
	l2 := newLink(t, clk, p.srv.URL, "", l.opts.StateDir, t0.Add(24*time.Hour))
	if l2.AgentID() != "ag-2" {
		t.Errorf("after a restart: id %q, want ag-2", l2.AgentID())
	}
}
