package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/goldentest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// servers runs the agent API (distribution) and the admin API on loopback.
func (v *env) servers(t *testing.T, actor ActorFunc) (dist, admin *httptest.Server) {
	t.Helper()
	dm, am := http.NewServeMux(), http.NewServeMux()
	v.e.RegisterAgentAPI(dm)
	NewAPI(v.e, actor).Register(am)
	dist, admin = httptest.NewServer(dm), httptest.NewServer(am)
	t.Cleanup(dist.Close)
	t.Cleanup(admin.Close)
	return dist, admin
}

type client struct {
	t      *testing.T
	base   string
	header map[string]string
}

// do sends method url with body (JSON-encoded unless a string or nil) and decodes a
// JSON answer into out (if not nil); it returns the status and the raw body.
func (c client) do(method, path string, body, out any) (int, []byte) {
	c.t.Helper()
	req := httpapitest.NewRequest(c.t, method, c.base+path, body)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, raw := httpapitest.Do(c.t, nil, req)
	if out != nil && len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

func (c client) with(k, v string) client {
	h := map[string]string{k: v}
	for a, b := range c.header {
		if a != k {
			h[a] = b
		}
	}
	return client{c.t, c.base, h}
}

func TestAgentAPI(t *testing.T) {
	v := newEnv(t)
	dist, admin := v.servers(t, LoopbackActor)
	dora := client{t, admin.URL, map[string]string{ActorHeader: "dora"}}
	anon := client{t, dist.URL, nil}

	var tok tokenResponse
	if code, raw := dora.do("POST", "/api/v1/enrolment-tokens", tokenRequest{Name: "pilot desks", Ring: "pilot", Tags: []string{"rx"}, MaxUses: 1}, &tok); code != 200 {
		t.Fatalf("create token: %d %s", code, raw)
	}
	tests := []struct {
		name string
		body any
		want int
	}{
		{"garbage token", map[string]string{"token": "pge1.x.y", "hostname": "h"}, 403},
		{"no hostname", map[string]string{"token": tok.Token}, 400},
		{"not JSON", "{", 400},
		{"too large", `{"token":"` + strings.Repeat("a", maxBody) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run("enroll: "+tt.name, func(t *testing.T) {
			if code, raw := anon.do("POST", "/agent/v1/enroll", tt.body, nil); code != tt.want {
				t.Errorf("enroll = %d %s, want %d", code, raw, tt.want)
			}
		})
	}
	var enr agentapi.EnrollResponse
	if code, raw := anon.do("POST", "/agent/v1/enroll", map[string]string{"token": tok.Token, "hostname": "rx-ws-03", "os": "linux"}, &enr); code != 200 {
		t.Fatalf("enroll: %d %s", code, raw)
	}
	if !strings.HasPrefix(enr.Credential, "pga1."+enr.AgentID+".") || enr.PollIntervalSeconds != 300 {
		t.Fatalf("enroll response %+v", enr)
	}
	if code, _ := anon.do("POST", "/agent/v1/enroll", map[string]string{"token": tok.Token, "hostname": "again"}, nil); code != 403 {
		t.Errorf("second enrolment with a one-use token = %d, want 403", code)
	}
	// The credential is stored hashed only.
	var stored string
	if err := v.db.QueryRow(`SELECT secret_sha FROM rollout_agents WHERE id = ?`, enr.AgentID).Scan(&stored); err != nil || strings.Contains(enr.Credential, stored) || len(stored) != 64 {
		t.Fatalf("stored credential %q (%v)", stored, err)
	}

	ag := anon.with("Authorization", "Bearer "+enr.Credential)
	if code, _ := anon.do("GET", "/agent/v1/deployments", nil, nil); code != 401 {
		t.Errorf("offers without a credential = %d, want 401", code)
	}
	if code, _ := anon.with("Authorization", "Bearer pga1."+enr.AgentID+".wrong").do("GET", "/agent/v1/deployments", nil, nil); code != 401 {
		t.Errorf("offers with a wrong secret = %d, want 401", code)
	}

	// A critical release for the pilot, with a target path that needs escaping.
	rel := v.release(t, Release{Name: "openssl 3.0.14", Version: "3.0.14", Severity: Critical, CVEs: []string{"CVE-2024-5535"},
		Targets: []string{"pkgs/openssl 3.0.14.deb"}})
	r := v.scheduled(t, pilotCore(rel.ID))
	v.tick(t)

	// 12:00, window closed: offered, download and install not allowed, come back at 22:00.
	var resp agentapi.OffersResponse
	if code, raw := ag.do("POST", "/agent/v1/checkin", agentapi.Facts{Hostname: "rx-ws-03", OS: "linux", Packages: []agentapi.Package{{Name: "openssl", Version: "3.0.13"}}}, &resp); code != 200 {
		t.Fatalf("checkin: %d %s", code, raw)
	}
	goldentest.Check(t, filepath.Join("testdata", "checkin.json"), normalize(t, &resp, enr.AgentID), *update)
	if len(resp.Deployments) != 1 {
		t.Fatalf("checkin offers %d deployments", len(resp.Deployments))
	}
	o := resp.Deployments[0]
	if o.DownloadAllowed || o.InstallAllowed || o.RetryAfterSeconds != 10*3600 || o.Targets[0].URL != "/repos/demo/targets/pkgs/openssl%203.0.14.deb" {
		t.Errorf("offer outside the window: %+v", o)
	}
	var agent Agent
	ags := must(t)(v.e.Agents(context.Background())).([]*Agent)
	agent = *ags[0]
	if agent.Facts.Packages[0].Version != "3.0.13" || !agent.LastAddr.IsLoopback() {
		t.Errorf("stored facts %+v from %v", agent.Facts, agent.LastAddr)
	}

	path := "/agent/v1/deployments/" + itoa(o.ID)
	var e agentapi.Error
	if code, _ := ag.do("POST", path+"/progress", agentapi.ProgressRequest{State: string(DepInstalling)}, &e); code != 409 || e.RetryAfterSeconds != 10*3600 {
		t.Errorf("installing outside the window = %d %+v, want 409 with retry_after_seconds", code, e)
	}
	if code, raw := ag.do("POST", path+"/progress", agentapi.ProgressRequest{State: "succeeded"}, nil); code != 400 {
		t.Errorf("progress to succeeded = %d %s, want 400", code, raw)
	}
	v.clk.Set(start.Add(10 * time.Hour))
	for _, s := range []DeploymentState{DepDownloading, DepDownloaded, DepInstalling} {
		if code, raw := ag.do("POST", path+"/progress", agentapi.ProgressRequest{State: string(s)}, nil); code != 200 {
			t.Fatalf("progress %s in the window = %d %s", s, code, raw)
		}
	}
	// A state reported again (the gate records downloads as the bytes go) is one event.
	if code, raw := ag.do("POST", path+"/progress", agentapi.ProgressRequest{State: string(DepInstalling)}, nil); code != 200 {
		t.Fatalf("installing reported again = %d %s", code, raw)
	}
	evs := must(t)(v.e.Events(context.Background(), r.ID, 1000)).([]Event)
	installing := 0
	for _, ev := range evs {
		if ev.Action == "deployment.installing" && ev.DeploymentID == o.ID {
			installing++
		}
	}
	if installing != 1 {
		t.Errorf("deployment.installing recorded %d times, want once", installing)
	}
	// A failed pre-check postpones: recorded with its values, not an attempt, still open.
	var pout agentapi.OutcomeResponse
	post := agentapi.OutcomeRequest{Status: agentapi.OutcomePostponed, Detail: agentapi.DetailPrecheck + "power: battery 12% (need AC or battery >= 40%)",
		Checks: []agentapi.Check{{Name: agentapi.CheckPower, Value: "battery 12%", Need: "AC or battery >= 40%"}, {Name: agentapi.CheckAppliance, OK: true, Value: "answered in 3ms", Need: "answers"}}}
	if code, raw := ag.do("POST", path+"/outcome", post, &pout); code != 200 || pout.State != string(DepInstalling) || pout.Attempt != 1 {
		t.Fatalf("outcome postponed = %d %s, want 200 still installing in attempt 1", code, raw)
	}
	if d := v.deployment(t, r.ID, "agent:"+enr.AgentID); d.State != DepInstalling || d.Detail != post.Detail || d.Attempt != 1 {
		t.Errorf("postponed deployment = %s %q attempt %d", d.State, d.Detail, d.Attempt)
	}
	postponed := false
	for _, ev := range must(t)(v.e.Events(context.Background(), r.ID, 1000)).([]Event) {
		if ev.Action == "deployment.postponed" && ev.Details["check.power"] == "failed: battery 12% (need AC or battery >= 40%)" {
			postponed = true
		}
	}
	if !postponed {
		t.Error("no deployment.postponed event with the power check's values")
	}
	var out agentapi.OutcomeResponse
	code, raw := ag.do("POST", path+"/outcome", map[string]any{"status": "failed", "exit_code": 1, "log_tail": strings.Repeat("x", MaxLogTail) + "THE END"}, &out)
	if code != 200 || out.State != string(DepFailed) || out.RetryAt.IsZero() || out.Attempt != 1 || out.MaxAttempts != 3 {
		t.Fatalf("outcome failed = %d %s", code, raw)
	}
	d := v.deployment(t, r.ID, "agent:"+enr.AgentID)
	if len(d.LogTail) != MaxLogTail || !strings.HasSuffix(d.LogTail, "THE END") || *d.ExitCode != 1 {
		t.Errorf("stored log tail %d bytes, exit %v", len(d.LogTail), d.ExitCode)
	}
	if code, _ := ag.do("POST", path+"/outcome", map[string]any{"status": "succeeded"}, nil); code != 409 {
		t.Errorf("outcome on a failed deployment waiting for its retry = %d, want 409", code)
	}
	// Another agent cannot touch it.
	var tok2 tokenResponse
	dora.do("POST", "/api/v1/enrolment-tokens", tokenRequest{Name: "other"}, &tok2)
	var enr2 agentapi.EnrollResponse
	anon.do("POST", "/agent/v1/enroll", map[string]string{"token": tok2.Token, "hostname": "other"}, &enr2)
	if code, _ := anon.with("Authorization", "Bearer "+enr2.Credential).do("POST", path+"/outcome", map[string]any{"status": "succeeded"}, nil); code != 404 {
		t.Errorf("another agent's report = %d, want 404", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// normalize replaces the random agent id so the response can be compared to a golden
// file.
func normalize(t *testing.T, v any, agentID string) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.ReplaceAll(b, []byte(agentID), []byte("ag-AGENTID")), '\n')
}

func TestAdminAPI(t *testing.T) {
	v := newEnv(t)
	v.devices()
	_, admin := v.servers(t, LoopbackActor)
	rita := client{t, admin.URL, map[string]string{ActorHeader: "rita"}}
	anna := rita.with(ActorHeader, "anna")
	nobody := client{t, admin.URL, nil}

	if code, _ := nobody.do("POST", "/api/v1/releases", Release{}, nil); code != 403 {
		t.Errorf("change without an actor = %d, want 403", code)
	}
	var rel Release
	code, raw := rita.do("POST", "/api/v1/releases", Release{Name: "fw 2.0", Repo: "demo", Targets: []string{"fw/fw-2.0.bin"}, Severity: High}, &rel)
	if code != 200 || rel.ID == 0 || rel.CreatedBy != "rita" {
		t.Fatalf("create release = %d %s", code, raw)
	}
	if code, raw := rita.do("POST", "/api/v1/releases", Release{Name: "x", Repo: "demo", Targets: []string{"../etc/passwd"}, Severity: "urgent"}, nil); code != 400 ||
		!strings.Contains(string(raw), "targets[0]") || !strings.Contains(string(raw), "severity") {
		t.Errorf("bad release = %d %s, want 400 naming targets[0] and severity", code, raw)
	}
	// A form post (no JSON content type) is refused.
	req, _ := http.NewRequest("POST", admin.URL+"/api/v1/releases", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(ActorHeader, "rita")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("form post = %v %v, want 400", resp.StatusCode, err)
	}

	var r Rollout
	spec := pilotCore(rel.ID)
	if code, raw := rita.do("POST", "/api/v1/rollouts", spec, &r); code != 200 || r.State != Draft {
		t.Fatalf("create rollout = %d %s", code, raw)
	}
	base := "/api/v1/rollouts/" + itoa(r.ID)
	steps := []struct {
		name   string
		c      client
		action string
		body   any
		want   int
		state  State
	}{
		{"approve a draft", anna, "approve", nil, 409, Draft},
		{"submit", rita, "submit", nil, 200, PendingApproval},
		{"requester approves", rita, "approve", actionRequest{Remark: "mine"}, 403, PendingApproval},
		{"reject without remark", anna, "reject", nil, 400, PendingApproval},
		{"reject", anna, "reject", actionRequest{Remark: "attach the test run"}, 200, Draft},
		{"resubmit", rita, "submit", nil, 200, PendingApproval},
		{"approve", anna, "approve", actionRequest{Remark: "ok"}, 200, Approved},
		{"unknown action", anna, "explode", nil, 404, Approved},
		{"approve again", anna, "approve", nil, 409, Approved},
		{"schedule", anna, "schedule", actionRequest{Start: start.Add(time.Hour)}, 200, Scheduled},
		{"halt without reason", anna, "halt", nil, 400, Scheduled},
	}
	for _, s := range steps {
		var got Rollout
		code, raw := s.c.do("POST", base+"/"+s.action, s.body, &got)
		if code != s.want {
			t.Fatalf("%s: %d %s, want %d", s.name, code, raw, s.want)
		}
		var now Rollout
		rita.do("GET", base, nil, &now)
		if now.State != s.state {
			t.Fatalf("%s: state %s, want %s", s.name, now.State, s.state)
		}
	}
	var ds []*Deployment
	if code, _ := rita.do("GET", "/api/v1/deployments?rollout="+itoa(r.ID)+"&state=scheduled", nil, &ds); code != 200 || len(ds) != 4 {
		t.Fatalf("deployments = %d, %d of them, want 4", code, len(ds))
	}
	var evs []Event
	rita.do("GET", base+"/events", nil, &evs)
	if len(evs) != 7 || evs[0].Action != "deployments.create" || evs[1].Action != "rollout.schedule" || evs[1].Actor != "anna" {
		t.Errorf("events: %+v", evs)
	}
	if code, raw := rita.do("PUT", "/api/v1/rings/canary", Ring{Order: 5, Selector: Selector{Tags: []string{"canary"}}}, nil); code != 200 {
		t.Errorf("put ring = %d %s", code, raw)
	}
	if code, raw := rita.do("DELETE", "/api/v1/rings/pilot", nil, nil); code != 409 {
		t.Errorf("delete a ring a rollout uses = %d %s, want 409", code, raw)
	}
	var w Window
	if code, raw := rita.do("POST", "/api/v1/windows", Window{Name: "sat", Cron: "0 8 * * sat", Duration: Duration(4 * time.Hour), Zone: "America/New_York", Ring: "canary"}, &w); code != 200 || w.ID == 0 {
		t.Errorf("add window = %d %s", code, raw)
	}
	if code, raw := rita.do("POST", "/api/v1/windows", Window{Name: "bad", Cron: "61 * * * *", Duration: Duration(time.Hour), Zone: "UTC"}, nil); code != 400 || !strings.Contains(string(raw), "cron") {
		t.Errorf("bad window = %d %s", code, raw)
	}
}

func TestLoopbackActorRefusesTheNetwork(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		header string
		ok     bool
	}{
		{"loopback v4 with a name", "127.0.0.1:5555", "dora", true},
		{"loopback v6 with a name", "[::1]:5555", "dora", true},
		{"loopback without a name", "127.0.0.1:5555", "", false},
		{"loopback with a bad name", "127.0.0.1:5555", "dora; drop table", false},
		{"a LAN address", "10.20.0.5:5555", "dora", false},
		{"a mapped LAN address", "[::ffff:10.20.0.5]:5555", "dora", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/releases", nil)
			r.RemoteAddr = tt.remote
			if tt.header != "" {
				r.Header.Set(ActorHeader, tt.header)
			}
			got, err := LoopbackActor(r)
			if (err == nil) != tt.ok || (tt.ok && got != tt.header) {
				t.Errorf("LoopbackActor = %q, %v; want ok=%v", got, err, tt.ok)
			}
		})
	}
}
