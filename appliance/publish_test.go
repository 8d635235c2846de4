package appliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// supplyFixture is a running System with a fake vendor source whose one file is staged
// as a candidate, and API tokens for rita (requester), anna (approver), vic (viewer).
type supplyFixture struct {
	sys     *System
	cfg     *config.Config
	svc     *supply.Service
	cand    supply.Candidate
	payload []byte
	tokens  map[string]string
}

func newSupplyFixture(t *testing.T) *supplyFixture { t.Helper(); return newSupplyFixtureWith(t, nil) }

// newSupplyFixtureWith is newSupplyFixture with mod changing the vendor source first.
func newSupplyFixtureWith(t *testing.T, mod func(*supply.Source)) *supplyFixture {
	t.Helper()
	ctx := context.Background()
	payload := []byte("vendor tool 1.2 installer; not a real one\n")
	sum := sha256.Sum256(payload)
	vendor := serveFile(t, "/tool-1.2.bin", payload)
	cfg := testConfig(t)
	cfg.Sources = supply.Section{{Name: "vendor", Kind: supply.KindURL, URL: vendor.URL + "/tool-1.2.bin", SHA256: hex.EncodeToString(sum[:])}}
	if mod != nil {
		mod(&cfg.Sources[0])
	}
	sys := newSystem(t, cfg, Options{Build: Build{Version: "test"}})
	runSystem(t, sys)
	waitReady(t, sys)

	svc, ok := serviceOf[*supply.Service](sys)
	if !ok {
		t.Fatal("no supply service")
	}
	if st, err := svc.Check(ctx, "vendor"); err != nil || st.Result != "ok" {
		t.Fatalf("vendor check = %+v, %v", st, err)
	}
	cs, err := svc.Candidates(ctx, "vendor")
	if err != nil || len(cs) != 1 {
		t.Fatalf("candidates = %+v, %v; want one", cs, err)
	}
	cand := cs[0]

	tokens := map[string]string{}
	for name, role := range map[string]auth.Role{"rita": auth.Requester, "anna": auth.Approver, "vic": auth.Viewer} {
		if err := sys.auth.CreateUser(ctx, nil, name, "correct horse battery staple", []auth.Role{role}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := sys.auth.CreateToken(ctx, &auth.Principal{User: name, Roles: []auth.Role{role}, Method: "password+totp", Source: "127.0.0.1"},
			"test", role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = "Bearer " + tok
	}
	return &supplyFixture{sys: sys, cfg: cfg, svc: svc, cand: cand, payload: payload, tokens: tokens}
}

// TestCandidateReleasePublishedOnApproval (issue 15): a fake vendor's file is verified
// and staged as a candidate; a requester turns it into a release with one API call; the
// site repository does not list its target until a second account approves a rollout
// of it; then a stock go-tuf updater downloads it through /repos/site/ with the bytes
// the vendor served. Refusals: an unknown candidate (404), a candidate released twice
// (409), a role without rollout.request (403).
func TestCandidateReleasePublishedOnApproval(t *testing.T) {
	ctx := context.Background()
	fx := newSupplyFixture(t)
	sys, cfg, cand, payload, tokens := fx.sys, fx.cfg, fx.cand, fx.payload, fx.tokens
	admin := "http://" + sys.AdminAddr()
	release := func(who string, id int64) (int, string) {
		return post(t, fmt.Sprintf("%s/api/v1/candidates/%d/release", admin, id), tokens[who], map[string]any{"severity": "high"}, nil)
	}
	page := func() string {
		code, body := fetch(t, "GET", admin+"/candidates", nil, "Authorization", tokens["vic"], "Accept", "text/html")
		if code != http.StatusOK {
			t.Fatalf("GET /candidates: %d %s", code, body)
		}
		return body
	}
	if p := page(); !strings.Contains(p, "tool-1.2.bin") || !strings.Contains(p, "Make release") {
		t.Errorf("candidates page lacks the candidate and its release button:\n%s", p)
	}
	if code, body := release("vic", cand.ID); code != http.StatusForbidden {
		t.Errorf("a viewer making a release: %d %s, want 403", code, body)
	}
	if code, body := release("rita", 999); code != http.StatusNotFound {
		t.Errorf("unknown candidate: %d %s, want 404", code, body)
	}
	var rel rollout.Release
	code, body := post(t, fmt.Sprintf("%s/api/v1/candidates/%d/release", admin, cand.ID), tokens["rita"], map[string]any{"severity": "high"}, &rel)
	if code != http.StatusCreated {
		t.Fatalf("release of candidate %d: %d %s, want 201", cand.ID, code, body)
	}
	target := "vendor/tool-1.2.bin"
	if c := rel.Candidate; rel.Repo != "site" || len(rel.Targets) != 1 || rel.Targets[0] != target || c == nil ||
		c.ID != cand.ID || c.Source != "vendor" || c.SHA256 != cand.SHA256 || c.Size != int64(len(payload)) || c.Path != target {
		t.Fatalf("release = %+v (candidate %+v), want repo site, target %s and the candidate provenance", rel, rel.Candidate, target)
	}
	if p := page(); !strings.Contains(p, fmt.Sprintf("release #%d", rel.ID)) || strings.Contains(p, "Make release") {
		t.Errorf("candidates page does not show candidate %d as release #%d", cand.ID, rel.ID)
	}
	if code, body := release("rita", cand.ID); code != http.StatusConflict {
		t.Errorf("the same candidate again: %d %s, want 409", code, body)
	}
	recs, err := sys.audit.Records(ctx, audit.Query{Action: "release.create"})
	if err != nil || len(recs) != 1 || recs[0].Actor != "rita" || recs[0].Details["candidate"] != strconv.FormatInt(cand.ID, 10) {
		t.Errorf("release.create audit records = %+v, %v; want one by rita naming candidate %d", recs, err, cand.ID)
	}

	ro := submitCandidateRollout(t, sys, rel.ID)
	siteDir := cfg.State.Path("tuf-site")
	if listed(t, siteDir, target) {
		t.Fatal("the target is signed before the rollout is approved")
	}
	if code, body := post(t, fmt.Sprintf("%s/api/v1/approvals/%d/approve", admin, ro.ID), tokens["anna"], map[string]string{"remark": "checked"}, nil); code != http.StatusOK {
		t.Fatalf("approval by anna: %d %s", code, body)
	}
	if !listed(t, siteDir, target) {
		t.Fatal("the target is not in the published targets.json after the approval")
	}
	if recs, _ := sys.audit.Records(ctx, audit.Query{Action: "release.sign"}); len(recs) != 1 || recs[0].After != cand.SHA256 {
		t.Errorf("release.sign audit records = %+v, want one with the candidate's sha256", recs)
	}

	// A stock go-tuf updater, trusting the site repository's root, through the cache.
	root, err := os.ReadFile(filepath.Join(siteDir, "repository", "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	dist := "http://" + sys.DistributionAddr()
	ti, data := tuftest.StockFetch(t, nil, dist+"/repos/site/metadata", dist+"/repos/site/targets", root, target)
	if !bytes.Equal(data, payload) {
		t.Errorf("downloaded %q, want the vendor's bytes %q", data, payload)
	}
	var custom struct {
		Release    struct{ ID int64 }   `json:"release"`
		Provenance rollout.CandidateRef `json:"provenance"`
	}
	if ti.Custom == nil || json.Unmarshal(*ti.Custom, &custom) != nil || custom.Release.ID != rel.ID || custom.Provenance.URL != cand.URL {
		t.Errorf("signed custom metadata = %s, want the release and the candidate's provenance", rawOf(ti.Custom))
	}
	if ps := sys.site.Health(); len(ps) != 0 {
		t.Errorf("site publish health = %+v, want none", ps)
	}
}

// listed reports whether the site repository's published targets.json lists path.
func listed(t *testing.T, dir, path string) bool {
	t.Helper()
	md, err := metadata.Targets().FromFile(filepath.Join(dir, "repository", "metadata", "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, ok := md.Signed.Targets[path]
	return ok
}

func rawOf(m *json.RawMessage) string {
	if m == nil {
		return "<none>"
	}
	return string(*m)
}

// TestTamperedCandidateIsNotSigned: when a candidate's staged bytes no longer match
// what was verified, the approval stands but nothing is signed: the target stays out of
// targets.json, health names the failure, and once the bytes are right again the
// retry (reconcile) publishes it.
func TestTamperedCandidateIsNotSigned(t *testing.T) {
	ctx := context.Background()
	fx := newSupplyFixture(t)
	e := fx.sys.rollout
	rel, err := fx.sys.site.createRelease(ctx, "rita", fx.cand.ID, map[string]string{"severity": "medium"})
	if err != nil {
		t.Fatal(err)
	}
	ro := submitCandidateRollout(t, fx.sys, rel.ID)
	staged := fx.svc.Path(fx.cand.SHA256)
	if err := os.WriteFile(staged, []byte("not what the vendor signed, same length?\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.ApproveRollout(ctx, "anna", ro.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	siteDir := fx.cfg.State.Path("tuf-site")
	if listed(t, siteDir, rel.Targets[0]) {
		t.Fatal("tampered bytes were signed")
	}
	if ps := fx.sys.site.Health(); len(ps) != 1 || ps[0].Code != "site-publish-failed" || !strings.Contains(ps[0].Text, "changed on disk") {
		t.Errorf("health = %+v, want site-publish-failed naming the changed bytes", ps)
	}
	if err := os.WriteFile(staged, fx.payload, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fx.sys.site.reconcile(ctx); err != nil {
		t.Fatalf("reconcile with the right bytes: %v", err)
	}
	if !listed(t, siteDir, rel.Targets[0]) {
		t.Error("the target is not published after the retry")
	}
}

// submitCandidateRollout has rita roll release rel out to the pilot ring (one stage)
// and submit the rollout for approval.
func submitCandidateRollout(t *testing.T, sys *System, rel int64) *rollout.Rollout {
	t.Helper()
	ctx := context.Background()
	ro, err := sys.rollout.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel, Risk: "low", TestEvidence: "lab", RollbackPlan: "uninstall",
		Stages: []rollout.Stage{{Ring: "pilot", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.rollout.Submit(ctx, ro.ID, "rita"); err != nil {
		t.Fatal(err)
	}
	return ro
}

// approveCandidateRelease has rita roll release rel out to the pilot ring and anna
// approve it (the two-person flow), which signs the release's target.
func approveCandidateRelease(t *testing.T, sys *System, rel int64) {
	t.Helper()
	ro := submitCandidateRollout(t, sys, rel)
	if err := sys.rollout.ApproveRollout(context.Background(), "anna", ro.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
}

// signedInstructions reads the install instructions signed with path in the site
// repository's published targets.json.
func signedInstructions(t *testing.T, dir, path string) (agentapi.Instructions, error) {
	t.Helper()
	md, err := metadata.Targets().FromFile(filepath.Join(dir, "repository", "metadata", "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	tf, ok := md.Signed.Targets[path]
	if !ok {
		t.Fatalf("targets.json does not list %s", path)
	}
	if tf.Custom == nil {
		return agentapi.Instructions{}, agentapi.ErrNoInstructions
	}
	return agentapi.ParseInstructions(*tf.Custom)
}

// TestCandidateReleaseSignsInstructions (issue 15): the install instructions of a
// candidate release, from the release request or else from the source's config, are
// signed into the target's custom metadata next to the provenance; a release of a
// source without any carries none; malformed ones in the request are refused with 400
// naming the field.
func TestCandidateReleaseSignsInstructions(t *testing.T) {
	dpkg := agentapi.Step{Command: []string{"/usr/bin/dpkg", "-i", "{file}"}, Check: []string{"/usr/bin/dpkg-query", "-W", "tool"}, MinFreeBytes: 1 << 20}
	msi := agentapi.Step{Command: []string{`C:\Windows\System32\msiexec.exe`, "/i", "{file}", "/qn"}, Reboot: true}
	for _, tc := range []struct {
		name    string
		config  map[string]agentapi.Step // the source's install key
		request string                   // the release request's install field
		bad     string                   // a request refused first (400)
		want    map[string]agentapi.Step // nil: no instructions signed
	}{
		{name: "from the source config", config: map[string]agentapi.Step{"linux": dpkg}, want: map[string]agentapi.Step{"linux": dpkg}},
		{name: "request overrides config", config: map[string]agentapi.Step{"linux": dpkg},
			bad:     `{"install": {"linux": {"command": ["dpkg", "-i", "{file}"]}}}`,
			request: `{"install": {"windows": {"command": ["C:\\Windows\\System32\\msiexec.exe", "/i", "{file}", "/qn"], "reboot": true}}}`,
			want:    map[string]agentapi.Step{"windows": msi}},
		{name: "none configured", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newSupplyFixtureWith(t, func(s *supply.Source) { s.Install = tc.config })
			url := fmt.Sprintf("http://%s/api/v1/candidates/%d/release", fx.sys.AdminAddr(), fx.cand.ID)
			if tc.bad != "" {
				code, body := post(t, url, fx.tokens["rita"], map[string]any{"severity": "high", "install": tc.bad}, nil)
				if code != http.StatusBadRequest || !strings.Contains(body, "install.linux.command[0]") {
					t.Errorf("relative install command: %d %s, want 400 naming install.linux.command[0]", code, body)
				}
			}
			req := map[string]any{"severity": "high"}
			if tc.request != "" {
				req["install"] = tc.request
			}
			var rel rollout.Release
			if code, body := post(t, url, fx.tokens["rita"], req, &rel); code != http.StatusCreated {
				t.Fatalf("release: %d %s", code, body)
			}
			approveCandidateRelease(t, fx.sys, rel.ID)
			dir := fx.cfg.State.Path("tuf-site")
			got, err := signedInstructions(t, dir, rel.Targets[0])
			if tc.want == nil {
				if !errors.Is(err, agentapi.ErrNoInstructions) {
					t.Errorf("signed instructions = %+v, %v; want none", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("signed instructions: %v", err)
			}
			if !reflect.DeepEqual(got.Install, tc.want) {
				t.Errorf("signed instructions = %+v, want %+v", got.Install, tc.want)
			}
		})
	}
}
