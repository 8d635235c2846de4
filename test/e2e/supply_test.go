package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	"github.com/patchgate/patchgate/appliance/supply/supplytest"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// Issue 15's "done when", in one test on loopback: a fake vendor publishes (a) files
// with a SHA256SUMS signed by its OpenPGP key, (b) a file with a detached OpenPGP
// signature, (c) a small Debian archive (InRelease clearsigned by the archive key,
// Packages, a .deb), all made here with ProtonMail/go-crypto, and (d) an installer
// whose sha256 the source pins. The appliance checks its sources at start and stages
// the first versions; the vendor then publishes a new version of (a), (b) and (c), and
// the appliance picks them up by itself when the fake clock passes the sources'
// interval. A requester turns the new .deb's candidate into a release through the API,
// an approver approves the rollout (two people: the requester cannot), which signs the
// target with its install instructions into the site repository; a stock go-tuf
// updater on the device fetches the vendor's bytes from it, and a real agent verifies
// the target via TUF, downloads it and runs the signed install command.
func TestVendorFeedsToInstalledPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole appliance")
	}
	ctx := t.Context()
	// The appliance's fake clock starts at the real time (TUF expiry is real): the
	// vendor's keys and signatures are an hour older.
	signedAt := time.Now().Add(-time.Hour)
	const interval = time.Hour
	key := supplytest.NewKey(t, signedAt, 0)
	pub := supplytest.ArmoredPublic(t, key)
	v := supplytest.NewVendor(t, signedAt)
	sums := map[string][]byte{"app-1.0.zip": []byte("app 1.0 bytes")}
	v.PutSums(t, "/app", key, sums)
	putSigned := func(data []byte) {
		v.Put("/fw/fw.bin", data)
		v.Put("/fw/fw.bin.asc", supplytest.DetachSign(t, key, signedAt, data))
	}
	putSigned([]byte("firmware 1"))
	v.PutDebian(t, key, supplytest.DebArchive{Deb: supplytest.Deb(t, "hello", "1.0"), Version: "1.0"})
	tool := []byte("tool 2.0 installer")
	v.Put("/tool/tool-2.0.msi", tool)

	s := &site{t: t, dir: t.TempDir()}
	s.installs = filepath.Join(s.dir, "installs.log")
	t.Setenv(installerEnv, s.installs)
	cfg := baseConfig(t, s.dir)
	every := conf.Duration(interval)
	install := map[string]agentapi.Step{runtime.GOOS: {Command: []string{os.Args[0], "-test.run=^TestInstallerHelper$", "--", agentapi.FilePlaceholder}}}
	cfg.Sources = supply.Section{
		{Name: "tool", Kind: supply.KindURL, URL: v.URL("/tool/tool-2.0.msi"), SHA256: supplytest.Sum(tool), Interval: every},
		{Name: "app", Kind: supply.KindOpenPGP, ChecksumsURL: v.URL("/app/SHA256SUMS"), Files: []string{"app-*.zip"}, Key: pub, Interval: every},
		{Name: "fw", Kind: supply.KindOpenPGP, URL: v.URL("/fw/fw.bin"), Key: pub, Interval: every},
		{Name: "deb", Kind: supply.KindDebian, URL: v.URL("/debian"), Key: pub, Suite: "stable", Components: []string{"main"},
			Architectures: []string{"amd64"}, Packages: []string{"hello"}, Interval: every, Install: install},
	}
	s.sys, s.clk = startAppliance(t, cfg)
	s.eng = s.sys.Rollout()
	staged := func(n float64) bool { // by each of the three feeds that publish new versions
		for _, src := range []string{"app", "fw", "deb"} {
			if s.counter("patchgate_supply_candidates_staged_total", "source", src) < n {
				return false
			}
		}
		return true
	}
	// The first checks run at start, in real time.
	for deadline := time.Now().Add(20 * time.Second); !staged(1); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first versions are not staged after 20s")
		}
	}

	// New versions; the scheduler checks again when the interval has passed on the fake
	// clock (it may not be waiting yet when the clock moves: move it until it checked).
	sums["app-1.1.zip"] = []byte("app 1.1 bytes")
	v.PutSums(t, "/app", key, sums)
	putSigned([]byte("firmware 2"))
	deb := supplytest.Deb(t, "hello", "1.1")
	v.PutDebian(t, key, supplytest.DebArchive{Deb: deb, Version: "1.1"})
	for advanced := time.Duration(0); !staged(2); advanced += interval {
		if advanced > 48*time.Hour {
			t.Fatalf("the new versions are not staged after %s of fake time", advanced)
		}
		s.clk.Advance(interval)
		for wait := time.Now().Add(2 * time.Second); !staged(2) && time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		}
	}

	// Tokens and the agent's enrolment are made now: they expire on the fake clock.
	admin := "http://" + s.sys.AdminAddr()
	tokens := apiTokens(t, s, map[string]auth.Role{"rita": auth.Requester, "anna": auth.Approver})
	var cands []supply.Candidate
	if code, body := call(t, "GET", admin+"/api/v1/candidates", tokens["rita"], nil); code != http.StatusOK || json.Unmarshal([]byte(body), &cands) != nil {
		t.Fatalf("GET /api/v1/candidates: %d %s", code, body)
	}
	want := map[string]string{ // source/name -> verified by
		"tool/tool-2.0.msi": "sha256 pinned",
		"app/app-1.0.zip":   "signed by OpenPGP key", "app/app-1.1.zip": "signed by OpenPGP key",
		"fw/fw.bin":               "detached OpenPGP signature by key",
		"deb/hello_1.0_amd64.deb": "InRelease signed by OpenPGP key", "deb/hello_1.1_amd64.deb": "InRelease signed by OpenPGP key",
	}
	var debCand supply.Candidate
	fws := 0
	for _, c := range cands {
		k := c.Source + "/" + c.Name
		if w, ok := want[k]; !ok || !strings.Contains(c.Verification, w) {
			t.Errorf("candidate %s verified %q, want %q", k, c.Verification, w)
		}
		if k == "fw/fw.bin" {
			fws++
		}
		if k == "deb/hello_1.1_amd64.deb" {
			debCand = c
		}
	}
	if len(cands) != 7 || fws != 2 {
		t.Fatalf("candidates = %+v, want both versions of each source's file", cands)
	}
	if debCand.SHA256 != supplytest.Sum(deb) || debCand.Size != int64(len(deb)) {
		t.Fatalf("candidate of hello 1.1 = %+v, want sha256 %s size %d", debCand, supplytest.Sum(deb), len(deb))
	}

	// The new package becomes a release, approved by a second account.
	s.roots = map[string]string{"site": filepath.Join(cfg.State.Path("tuf-site"), "repository", "metadata", "1.root.json")}
	ep := s.newAgent("site-ws", "pilot", "127.0.0.1", 0)
	s.cycle(ep)
	var rel rollout.Release
	code, body := call(t, "POST", fmt.Sprintf("%s/api/v1/candidates/%d/release", admin, debCand.ID), tokens["rita"], map[string]any{"severity": "high"})
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &rel) != nil {
		t.Fatalf("release of the candidate: %d %s", code, body)
	}
	target := "deb/hello_1.1_amd64.deb"
	if len(rel.Targets) != 1 || rel.Targets[0] != target || rel.Repo != "site" {
		t.Fatalf("release = %+v, want target %s of repository site", rel, target)
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

	// A stock go-tuf updater on the device, trusting the site repository's first root
	// and sending the device's credential (the serving gate is enforced).
	root, err := os.ReadFile(s.roots["site"])
	if err != nil {
		t.Fatal(err)
	}
	dist := "http://" + s.sys.DistributionAddr()
	ti, data := tuftest.StockFetch(t, s.deviceClient(ep), dist+"/repos/site/metadata", dist+"/repos/site/targets", root, target)
	if !bytes.Equal(data, deb) {
		t.Errorf("the stock updater got %d bytes, want the vendor's .deb (%d bytes)", len(data), len(deb))
	}
	if ti.Custom == nil {
		t.Fatalf("%s has no signed custom metadata", target)
	}
	if ins, err := agentapi.ParseInstructions(*ti.Custom); err != nil || len(ins.Install) == 0 {
		t.Errorf("signed instructions of %s = %+v, %v; want the source's install command", target, ins, err)
	}

	// The agent verifies, downloads and runs the signed instruction.
	s.cycle(ep)
	if got := s.installed(); len(got) != 1 || got[0] != "site-ws "+debCand.SHA256 {
		t.Fatalf("installs = %q, want the agent installing %s with the signed command", got, debCand.SHA256)
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
