package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/conf"
)

// TestRolloutWiring runs the System on the dev config with the gate enforced: the demo
// upstream's target is held until a rollout releases it to an enrolled agent's ring,
// then served through the gate and counted as delivered once the whole of it is sent; the agent's report completes
// the rollout; every step is in the audit trail and the panel is on the status page.
func TestRolloutWiring(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Rollout.Gate = "enforce"
	cfg.Rollout.DefaultRing = ""
	cfg.Rollout.Windows = []rollout.SeedWindow{{Name: "always", Cron: "0 * * * *", Duration: conf.Duration(2 * time.Hour)}}
	sys := newSystem(t, cfg, Options{Build: Build{Version: "test"}})
	runSystem(t, sys)
	e := sys.rollout
	if e == nil {
		t.Fatal("no rollout engine on the System")
	}
	dist := "http://" + sys.DistributionAddr()

	tok, _, err := e.CreateToken(ctx, "dora", "pilot desks", "pilot", nil, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	var enr struct {
		AgentID    string `json:"agent_id"`
		Credential string `json:"credential"`
	}
	code, body := post(t, dist+"/agent/v1/enroll", "", map[string]string{"token": tok, "hostname": "rx-ws-1"}, &enr)
	if code != 200 || enr.Credential == "" {
		t.Fatalf("enroll: %d %s", code, body)
	}
	auth := "Bearer " + enr.Credential
	// The check-in's facts make the device an asset of the inventory; it stays in the
	// token's ring.
	var ci struct {
		AssetID string `json:"asset_id"`
		Ring    string `json:"ring"`
	}
	if code, body := post(t, dist+"/agent/v1/checkin", auth, map[string]any{"hostname": "rx-ws-1", "os": "linux", "serial": "SN-1"}, &ci); code != 200 || ci.Ring != "pilot" {
		t.Fatalf("checkin: %d %s, want ring pilot", code, body)
	}
	if _, err := sys.assets.Get(ctx, ci.AssetID); err != nil {
		t.Errorf("the inventory does not have the agent's device %s: %v", ci.AssetID, err)
	}

	// Held: the target is verified and known, but no rollout releases it.
	target := dist + "/repos/demo/targets/hello.txt"
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = getWith(t, target, auth)
		if code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET hello.txt before any rollout: %d %s, want 403 held", code, body)
		}
		time.Sleep(50 * time.Millisecond) // the mirror's first refresh runs as Run starts
	}
	if !strings.Contains(body, "held") {
		t.Errorf("refusal says %q, want it held", body)
	}
	// Without the credential, from the agent's address: the same device, held too.
	if code, body := getWith(t, target, ""); code != http.StatusForbidden || !strings.Contains(body, "held") {
		t.Errorf("the agent's device without its credential: %d %s, want 403 held", code, body)
	}
	// From another loopback address the inventory has never seen: no ring.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	resp, b := httpapitest.Do(t, other, httpapitest.NewRequest(t, "GET", target, nil))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "not in the inventory") {
		t.Errorf("an unknown device: %d %s, want 403 not in the inventory", resp.StatusCode, b)
	}

	r := helloRollout(t, e, false)
	for _, step := range []func() (*rollout.Rollout, error){
		func() (*rollout.Rollout, error) { return e.Submit(ctx, r.ID, "rita") },
		func() (*rollout.Rollout, error) { return e.Approve(ctx, r.ID, "anna", "fine") },
		func() (*rollout.Rollout, error) { return e.Schedule(ctx, r.ID, "dora", time.Time{}) },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// An interrupted download (the first bytes only) is not a delivery.
	if code, body := fetch(t, "GET", target, nil, "Authorization", auth, "Range", "bytes=0-9"); code != http.StatusPartialContent || body != "Hello from" {
		t.Fatalf("GET hello.txt bytes 0-9: %d %q, want 206 \"Hello from\"", code, body)
	}
	if ds, err := e.Deployments(ctx, rollout.DeploymentFilter{RolloutID: r.ID}); err != nil || len(ds) != 1 || ds[0].State != rollout.DepDownloading {
		t.Fatalf("deployments after a partial download: %+v %v, want one downloading", ds, err)
	}
	code, body = getWith(t, target, auth)
	if code != 200 || !strings.Contains(body, "Hello from Patchgate") {
		t.Fatalf("GET hello.txt after the rollout released the pilot: %d %q", code, body)
	}
	ds, err := e.Deployments(ctx, rollout.DeploymentFilter{RolloutID: r.ID})
	if err != nil || len(ds) != 1 || ds[0].State != rollout.DepDownloaded {
		t.Fatalf("deployments after the download: %+v %v, want one downloaded (delivered)", ds, err)
	}
	var out struct{ State string }
	if code, body := post(t, dist+"/agent/v1/deployments/"+strconv.FormatInt(ds[0].ID, 10)+"/outcome", auth, map[string]any{"status": "succeeded", "exit_code": 0}, &out); code != 200 || out.State != "succeeded" {
		t.Fatalf("outcome: %d %s", code, body)
	}
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ = e.Rollout(ctx, r.ID); r.State != rollout.Completed {
		t.Fatalf("rollout %s after the pilot succeeded, want completed", r.State)
	}

	recs, err := sys.audit.Records(ctx, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, rec := range recs {
		seen[rec.Action] = rec.Actor
	}
	for action, actor := range map[string]string{"rollout.approve": "anna", "rollout.submit": "rita", "rollout.schedule": "dora",
		"agent.enroll": "agent:" + enr.AgentID, "deployment.succeeded": "agent:" + enr.AgentID, "stage.advance": "system"} {
		if seen[action] != actor {
			t.Errorf("audit record %s by %q, want by %q", action, seen[action], actor)
		}
	}

	// The panel is on the status page, drawn.
	found := false
	for _, p := range statusJSON(t, sys).Panels {
		found = found || p.ID == "rollout"
	}
	if !found {
		t.Error("no rollout panel in the status JSON")
	}
	code, page := getWith(t, "http://"+sys.AdminAddr()+"/", "")
	if code != 200 || !strings.Contains(page, "hello 1") || strings.Contains(page, "could not be drawn") {
		t.Errorf("status page (%d) lacks a drawn rollout panel", code)
	}
}

func getWith(t *testing.T, url, authz string) (int, string) {
	t.Helper()
	return fetch(t, "GET", url, nil, "Authorization", authz)
}

func post(t *testing.T, url, authz string, body, out any) (int, string) {
	t.Helper()
	j, _ := json.Marshal(body)
	code, b := fetch(t, "POST", url, bytes.NewReader(j), "Content-Type", "application/json", "Authorization", authz)
	if out != nil {
		json.Unmarshal([]byte(b), out)
	}
	return code, b
}
