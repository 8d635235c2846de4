package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/supply"
)

// A vendor file to an installed endpoint, on loopback (issue 15): a vendor's web server
// offers a file whose sha256 the source pins, with install instructions in the source's
// config; the appliance checks the source by itself and stages the verified file as a
// candidate; a requester makes it a release through the API, an approver approves the
// rollout (two people), which signs the target and its instructions into the site
// repository; a real agent trusting the site repository's root verifies the target via
// TUF, downloads it through the distribution listener, runs the signed install command
// and reports the result.
func TestVendorFileInstalledBySignedInstructions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole appliance")
	}
	ctx := context.Background()
	payload := bytes.Repeat([]byte("vendor tool 2.0 "), 4096)
	h := sha256.Sum256(payload)
	hexSum := hex.EncodeToString(h[:])
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/downloads/tool-2.0.bin" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	}))
	t.Cleanup(vendor.Close)

	s := &site{t: t, dir: t.TempDir()}
	s.installs = filepath.Join(s.dir, "installs.log")
	t.Setenv(installerEnv, s.installs)
	cfg := baseConfig(t, s.dir)
	cfg.Sources = supply.Section{{Name: "vendor", Kind: supply.KindURL, URL: vendor.URL + "/downloads/tool-2.0.bin", SHA256: hexSum,
		Install: map[string]agentapi.Step{runtime.GOOS: {Command: []string{os.Args[0], "-test.run=^TestInstallerHelper$", "--", agentapi.FilePlaceholder}}}}}
	s.sys, s.clk = startAppliance(t, cfg)
	s.eng = s.sys.Rollout()
	admin := "http://" + s.sys.AdminAddr()
	tokens := apiTokens(t, s, map[string]auth.Role{"rita": auth.Requester, "anna": auth.Approver})

	// The agent trusts the site repository's first root, as an admin would copy it.
	s.roots = map[string]string{"site": filepath.Join(cfg.State.Path("tuf-site"), "repository", "metadata", "1.root.json")}
	ep := s.newAgent("site-ws", "pilot", "127.0.0.1", 0)
	s.cycle(ep) // enrol and check in: the device is known in its ring

	// The source's first check runs at start: the file becomes a candidate.
	var cands []supply.Candidate
	for deadline := time.Now().Add(20 * time.Second); len(cands) == 0; time.Sleep(20 * time.Millisecond) { // the check runs in real time
		if time.Now().After(deadline) {
			t.Fatal("no candidate after 20s")
		}
		if code, body := call(t, "GET", admin+"/api/v1/candidates", tokens["rita"], nil); code == http.StatusOK {
			json.Unmarshal([]byte(body), &cands)
		}
	}
	if c := cands[0]; c.SHA256 != hexSum || c.Size != int64(len(payload)) || !strings.Contains(c.Verification, "sha256 pinned") {
		t.Fatalf("candidate = %+v, want the vendor's file verified by its pinned sha256", c)
	}

	var rel rollout.Release
	code, body := call(t, "POST", fmt.Sprintf("%s/api/v1/candidates/%d/release", admin, cands[0].ID), tokens["rita"], map[string]any{"severity": "high"})
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &rel) != nil {
		t.Fatalf("release of the candidate: %d %s", code, body)
	}
	r, err := s.eng.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel.ID, Risk: "low", TestEvidence: "lab install", RollbackPlan: "reinstall 1.0",
		Stages: []rollout.Stage{{Ring: "pilot", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Submit(ctx, r.ID, "rita"); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", fmt.Sprintf("%s/api/v1/approvals/%d/approve", admin, r.ID), tokens["rita"], map[string]string{"remark": "mine"}); code != http.StatusForbidden {
		t.Errorf("the requester approving her own rollout: %d %s, want 403", code, body)
	}
	if code, body := call(t, "POST", fmt.Sprintf("%s/api/v1/approvals/%d/approve", admin, r.ID), tokens["anna"], map[string]string{"remark": "checked"}); code != http.StatusOK {
		t.Fatalf("approval by anna: %d %s", code, body)
	}
	if _, err := s.eng.Schedule(ctx, r.ID, "dora", time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.tick()

	// The agent verifies, downloads and runs the signed instruction.
	s.cycle(ep)
	if got := s.installed(); len(got) != 1 || got[0] != "site-ws "+hexSum {
		t.Fatalf("installs = %q, want the agent installing %s with the signed command", got, hexSum)
	}
	ds, err := s.eng.Deployments(ctx, rollout.DeploymentFilter{RolloutID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != rollout.DepSucceeded || ds[0].ExitCode == nil || *ds[0].ExitCode != 0 || !strings.Contains(ds[0].LogTail, "installed") {
		t.Fatalf("deployments = %+v, want one succeeded with exit code 0 and the installer's output", ds)
	}
	s.tick()
	if r := s.rollout(r.ID); r.State != rollout.Completed {
		t.Errorf("rollout is %s after the device succeeded, want completed", r.State)
	}
}

// apiTokens creates an account with each role and returns an API token header for it.
func apiTokens(t *testing.T, s *site, roles map[string]auth.Role) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for name, role := range roles {
		if err := s.sys.Auth().CreateUser(ctx, nil, name, "correct horse battery staple", []auth.Role{role}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := s.sys.Auth().CreateToken(ctx, &auth.Principal{User: name, Roles: []auth.Role{role}, Method: "password+totp", Source: "127.0.0.1"},
			"e2e", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = "Bearer " + tok
	}
	return out
}

// call sends a JSON request (body nil: none) with the authorization header authz.
func call(t *testing.T, method, url, authz string, body any) (int, string) {
	t.Helper()
	var in io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		in = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, in)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
