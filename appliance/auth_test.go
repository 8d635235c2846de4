package appliance

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/goldentest"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// adminPatterns lists every pattern registered on mux. ServeMux has no public way to
// list them, so this reads its routing index by reflection (test-only). If a Go release
// changes those internals the test fails here, saying so, rather than passing vacuously.
func adminPatterns(t *testing.T, mux *http.ServeMux) []string {
	t.Helper()
	idx := reflect.ValueOf(mux).Elem().FieldByName("index")
	if !idx.IsValid() {
		t.Fatal("cannot list the admin mux's routes: net/http.ServeMux has no index field in this Go release; update adminPatterns")
	}
	seen := map[string]bool{}
	add := func(p reflect.Value) {
		if p.Kind() == reflect.Pointer {
			p = p.Elem()
		}
		s := p.FieldByName("str")
		if !s.IsValid() {
			t.Fatal("cannot list the admin mux's routes: pattern has no str field; update adminPatterns")
		}
		seen[s.String()] = true
	}
	segs := idx.FieldByName("segments")
	for _, k := range segs.MapKeys() {
		l := segs.MapIndex(k)
		for i := range l.Len() {
			add(l.Index(i))
		}
	}
	multis := idx.FieldByName("multis")
	for i := range multis.Len() {
		add(multis.Index(i))
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	if len(out) < 10 {
		t.Fatalf("found only %d admin routes (%v); the route listing is broken", len(out), out)
	}
	return out
}

// TestEveryAdminRouteHasAPermission builds the whole System and checks that every route
// any subsystem registered on the admin mux is in auth.AdminRoutes: a new route without
// an entry fails here (and is refused at run time).
func TestEveryAdminRouteHasAPermission(t *testing.T) {
	sys := newSystem(t, testConfig(t), Options{})
	patterns := adminPatterns(t, sys.admin.mux)
	for _, p := range patterns {
		if _, ok := auth.AdminRoutes[p]; !ok {
			t.Errorf("admin route %q has no entry in auth.AdminRoutes (appliance/auth/routes.go): add one with the permission it needs", p)
		}
	}
	for p := range auth.AdminRoutes {
		if !slices.Contains(patterns, p) {
			t.Logf("auth.AdminRoutes has %q, which nothing registered (yet)", p)
		}
	}

	// Per role, per route: the guard in front of the real mux's patterns allows exactly
	// what the role's grants say. Stub handlers stand in for the real ones so that an
	// allowed request changes nothing.
	stub := http.NewServeMux()
	for _, p := range patterns {
		stub.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	}
	g, err := sys.auth.Guard(stub, auth.AdminRoutes)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range auth.Roles {
		p := &auth.Principal{User: "probe", Roles: []auth.Role{role}, Method: "test"}
		for _, pr := range auth.Probes(patterns) {
			got := g.Decide(httptest.NewRequest(pr.Method, pr.Path, nil), p)
			want := p.Can(pr.Perm)
			if got != want {
				t.Errorf("role %s, %s %s (needs %s): allowed=%v, want %v", role, pr.Method, pr.Path, pr.Perm, got, want)
			}
		}
	}
	// The access matrix, reviewed as a golden file: every route (and rollout action) with
	// the roles that may use it. A new route, or a changed permission, shows here.
	var lines []string
	for _, pr := range auth.Probes(patterns) {
		var who []string
		for _, role := range auth.Roles {
			if g.Decide(httptest.NewRequest(pr.Method, pr.Path, nil), &auth.Principal{User: "probe", Roles: []auth.Role{role}}) {
				who = append(who, string(role))
			}
		}
		switch pr.Perm {
		case auth.Public:
			who = []string{"anyone"}
		case auth.Session:
			who = []string{"any session, before MFA too"}
		}
		if len(who) == 0 {
			who = []string{"nobody"}
		}
		lines = append(lines, fmt.Sprintf("%-48s %s", pr.Method+" "+pr.Path, strings.Join(who, ", ")))
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	// A change to the matrix is reviewed, then written with -update.
	goldentest.Check(t, filepath.Join("testdata", "access-matrix.golden"), []byte(got), *updateGolden)

	// Unknown routes are denied by default: nothing runs.
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("DELETE", "/api/v1/nothing-here", nil))
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("unknown route = %d, want 404/405", rec.Code)
	}
}

func TestAdminHTTPSSelfSignedAndSetupToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth.TLS.Mode = "self-signed"
	cfg.Auth.LoopbackViewer = false
	sys, logs := runLogged(t, cfg)
	if !strings.Contains(logs.String(), `"certificate_sha256"`) || !strings.Contains(logs.String(), `"setup_token"`) {
		t.Fatalf("log lacks the certificate fingerprint or the setup token:\n%s", logs.String())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("https://" + sys.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS /healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz = %d", resp.StatusCode)
	}
	// The status page needs a login now.
	resp, err = c.Get("https://" + sys.AdminAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("status page without login = %d, want a redirect to /login", resp.StatusCode)
	}
	// Plain HTTP gets nothing.
	if resp, err := http.Get("http://" + sys.AdminAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the HTTPS admin listener")
		}
	}
}

// TestSeparationOfDutiesWithTheEngine approves through the approval guard against the
// real rollout engine: the requester is refused, an emergency needs two other approvers,
// and every step is in the audit trail with the approver's role and method.
func TestSeparationOfDutiesWithTheEngine(t *testing.T) {
	sys := newSystem(t, testConfig(t), Options{})
	eng, ok := serviceOf[*rollout.Engine](sys)
	if !ok {
		t.Skip("the rollout engine is not wired in this build")
	}
	ctx := context.Background()
	rita := &auth.Principal{User: "rita", Roles: []auth.Role{auth.Requester, auth.Approver}, Method: "password+totp", Source: "127.0.0.1"}
	alan := &auth.Principal{User: "alan", Roles: []auth.Role{auth.Approver}, Method: "password+totp", Source: "127.0.0.1"}
	bea := &auth.Principal{User: "bea", Roles: []auth.Role{auth.Approver}, Method: "token", Source: "127.0.0.2"}

	rel, err := eng.CreateRelease(ctx, "rita", rollout.Release{Name: "robot firmware 7.1", Repo: "vendor", Targets: []string{"robot/7.1.bin"},
		Severity: rollout.Critical, KnownExploited: true, CVEs: []string{"CVE-2025-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := eng.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel.ID, Emergency: true, Risk: "exploited in the wild",
		TestEvidence: "pilot robot dispensed 40 test fills", RollbackPlan: "vendor image 7.0 on the cache"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Submit(ctx, ro.ID, "rita"); err != nil {
		t.Fatal(err)
	}
	// The approvals page's path: the guard's principal in the context, for the audit record.
	approve := func(p *auth.Principal, remark string) error {
		return eng.ApproveRollout(auth.WithPrincipal(ctx, p), p.User, ro.ID, true, remark)
	}
	state := func() string {
		r, err := eng.Rollout(ctx, ro.ID)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.State)
	}
	if err := approve(rita, "mine, urgent"); err == nil || !strings.Contains(err.Error(), "separation of duties") {
		t.Fatalf("requester approving = %v, want separation of duties", err)
	}
	if err := approve(alan, "checked"); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "pending_approval" {
		t.Fatalf("emergency after one approval is %s, want pending_approval", s)
	}
	if err := approve(alan, "again"); err == nil {
		t.Fatal("the same approver counted twice")
	}
	if err := approve(bea, "second look"); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "approved" {
		t.Fatalf("emergency after two approvals is %s, want approved", s)
	}
	recs, err := sys.audit.Records(ctx, audit.Query{Action: "rollout.approve"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Actor+"/"+r.Role+"/"+r.AuthMethod+"/"+r.Source)
	}
	want := []string{"alan/approver/password+totp/127.0.0.1", "bea/approver/token/127.0.0.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rollout.approve audit records = %v, want %v", got, want)
	}
}

func TestStartIsAudited(t *testing.T) {
	cfg := testConfig(t)
	sys := newSystem(t, cfg, Options{ConfigPath: "../configs/dev.yaml", Build: Build{Version: "v-test"}})
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "appliance.start"})
	if err != nil || len(recs) != 1 || recs[0].Details["version"] != "v-test" || !strings.HasPrefix(recs[0].After, "sha256:") {
		t.Fatalf("appliance.start records = %+v, %v; want one with the version and the config's digest", recs, err)
	}
	if s := panelData[audit.Stats](t, sys, "audit"); s.Records < 1 || s.FileBytes == 0 || !strings.HasPrefix(s.File, cfg.State.Dir) {
		t.Errorf("the status page's audit panel = %+v, want the trail's path and size", s)
	}
}
