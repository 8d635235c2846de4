package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fastArgon keeps the race-detector tests quick; production uses defaultArgon.
var fastArgon = argonParams{memKiB: 64, time: 1, threads: 1}

type fixture struct {
	a     *Authority
	db    *store.DB
	log   *audit.Log
	clock *clock.Fake
	srv   *httptest.Server
	mux   *http.ServeMux
}

func newFixture(t *testing.T, pol Policy) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	clk := clock.NewFake(t0)
	log, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(t.TempDir(), "audit"), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	a, err := New(ctx, db, Options{Policy: pol, Clock: clk, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	a.argon = fastArgon
	mux := http.NewServeMux()
	a.Register(mux)
	// Routes other packages serve (rollout's exceptions, the audit export, ...) answer
	// 204 from a stand-in: here only the guard in front of them is under test.
	for pattern := range AdminRoutes {
		if _, p := mux.Handler(requestFor(pattern)); p == pattern {
			continue // registered by Register
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	}
	g, err := a.Guard(mux, AdminRoutes)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &fixture{a: a, db: db, log: log, clock: clk, srv: srv, mux: mux}
}

// requestFor makes a request that matches pattern (see probeTarget).
func requestFor(pattern string) *http.Request {
	method, path := probeTarget(pattern)
	return httptest.NewRequest(method, path, nil)
}

// user makes an account with roles and, when mfa, a TOTP secret; it returns the secret.
func (fx *fixture) user(t *testing.T, name string, mfa bool, roles ...Role) string {
	t.Helper()
	ctx := context.Background()
	admin := &Principal{User: "test-admin", Roles: []Role{Admin}, Method: "test"}
	if err := fx.a.CreateUser(ctx, admin, name, "correct horse battery", roles); err != nil {
		t.Fatal(err)
	}
	if !mfa {
		return ""
	}
	key, err := newTOTPKey("Patchgate", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.db.Exec(`UPDATE auth_users SET totp_secret = ? WHERE name = ?`, key.Secret(), name); err != nil {
		t.Fatal(err)
	}
	return key.Secret()
}

type client struct {
	t   *testing.T
	fx  *fixture
	c   *http.Client
	hdr http.Header
}

func (fx *fixture) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, fx: fx, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, hdr: http.Header{}}
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	req := httpapitest.NewRequest(c.t, method, c.fx.srv.URL+path, body, "Content-Type", "application/json", "Accept", "application/json")
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	resp, b := httpapitest.Do(c.t, c.c, req)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// login logs in with password and, if secret is set, the current TOTP code.
func (c *client) login(name, secret string) {
	c.t.Helper()
	code, m := c.do("POST", "/login", map[string]string{"user": name, "password": "correct horse battery"})
	if code != 200 {
		c.t.Fatalf("login %s = %d %v", name, code, m)
	}
	if secret != "" {
		c.fx.clock.Advance(30 * time.Second) // a fresh time step
		otp, _ := totp.GenerateCode(secret, c.fx.clock.Now())
		if code, m := c.do("POST", "/login/mfa", map[string]string{"code": otp}); code != 200 {
			c.t.Fatalf("mfa %s = %d %v", name, code, m)
		}
	}
}

func TestGuardPerRolePerRoute(t *testing.T) {
	fx := newFixture(t, Policy{})
	var patterns []string
	for p := range AdminRoutes {
		patterns = append(patterns, p)
	}
	for _, role := range Roles {
		secret := fx.user(t, "u-"+string(role), true, role)
		c := fx.client(t)
		c.login("u-"+string(role), secret)
		for _, pr := range Probes(patterns) {
			if pr.Perm == Public || pr.Perm == Session || strings.Contains(pr.Path, "logout") {
				continue // these answer for everybody; logging out would end the session
			}
			code, m := c.do(pr.Method, pr.Path, map[string]string{})
			msg, _ := m["error"].(string)
			denied := code == http.StatusForbidden && (strings.Contains(msg, "needs the") || strings.Contains(msg, "no permission entry"))
			want := role.Grants(pr.Perm)
			if denied == want {
				t.Errorf("role %s: %s %s = %d %v; want allowed=%v (needs %s)", role, pr.Method, pr.Path, code, m, want, pr.Perm)
			}
		}
	}
}

func TestGuardRefusals(t *testing.T) {
	fx := newFixture(t, Policy{})
	secret := fx.user(t, "ann", true, Approver)
	anon := fx.client(t)
	if code, _ := anon.do("GET", "/api/v1/exceptions", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous API call = %d, want 401", code)
	}
	// A browser without a session is sent to the login page.
	resp, _ := anon.c.Get(fx.srv.URL + "/exceptions")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Errorf("anonymous page = %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A route on the mux without a table entry is refused.
	fx.mux.HandleFunc("GET /api/v1/new-thing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	c := fx.client(t)
	c.login("ann", secret)
	if code, m := c.do("GET", "/api/v1/new-thing", nil); code != http.StatusForbidden {
		t.Errorf("route without a permission entry = %d %v, want 403", code, m)
	}
	// Password alone does not reach anything but the MFA step.
	half := fx.client(t)
	half.do("POST", "/login", map[string]string{"user": "ann", "password": "correct horse battery"})
	if code, _ := half.do("GET", "/api/v1/exceptions", nil); code != http.StatusForbidden {
		t.Errorf("before MFA = %d, want 403", code)
	}
	// Cross-origin unsafe request with a valid session: refused.
	c.hdr.Set("Origin", "https://evil.example")
	c.hdr.Set("Sec-Fetch-Site", "cross-site")
	if code, m := c.do("POST", "/api/v1/exceptions/1/approve", map[string]string{"remark": "x"}); code != http.StatusForbidden || !strings.Contains(m["error"].(string), "cross-origin") {
		t.Errorf("cross-origin POST = %d %v, want 403 cross-origin", code, m)
	}
	c.hdr.Set("Sec-Fetch-Site", "same-origin")
	c.hdr.Set("Origin", fx.srv.URL)
	if code, _ := c.do("GET", "/api/v1/exceptions", nil); code != http.StatusNoContent {
		t.Errorf("same-origin GET = %d, want 204 (the stand-in handler)", code)
	}
}

func TestTOTPReplayRefused(t *testing.T) {
	fx := newFixture(t, Policy{})
	secret := fx.user(t, "bob", true, Deployer)
	code, _ := totp.GenerateCode(secret, fx.clock.Now())
	first := fx.client(t)
	first.do("POST", "/login", map[string]string{"user": "bob", "password": "correct horse battery"})
	if st, m := first.do("POST", "/login/mfa", map[string]string{"code": code}); st != 200 {
		t.Fatalf("first use of a code = %d %v", st, m)
	}
	// The same code again, within its 30 s step, from another login: refused.
	second := fx.client(t)
	second.do("POST", "/login", map[string]string{"user": "bob", "password": "correct horse battery"})
	st, m := second.do("POST", "/login/mfa", map[string]string{"code": code})
	if st != http.StatusUnauthorized || !strings.Contains(m["error"].(string), "used already") {
		t.Fatalf("replayed code = %d %v, want 401 used already", st, m)
	}
	// An older step (the previous code) is refused too.
	old, _ := totp.GenerateCode(secret, fx.clock.Now().Add(-30*time.Second))
	if st, _ := second.do("POST", "/login/mfa", map[string]string{"code": old}); st != http.StatusUnauthorized {
		t.Errorf("previous step's code = %d, want 401", st)
	}
	fx.clock.Advance(30 * time.Second)
	next, _ := totp.GenerateCode(secret, fx.clock.Now())
	if st, m := second.do("POST", "/login/mfa", map[string]string{"code": next}); st != 200 {
		t.Errorf("the next step's code = %d %v, want 200", st, m)
	}
}

func TestRecoveryCodeWorksOnce(t *testing.T) {
	fx := newFixture(t, Policy{})
	fx.user(t, "cy", true, Requester)
	p := &Principal{User: "cy", Roles: []Role{Requester}}
	codes, err := fx.a.NewRecoveryCodes(context.Background(), p)
	if err != nil || len(codes) != 10 {
		t.Fatalf("NewRecoveryCodes = %v, %v", codes, err)
	}
	for i, want := range []int{200, 401} {
		c := fx.client(t)
		c.do("POST", "/login", map[string]string{"user": "cy", "password": "correct horse battery"})
		if st, m := c.do("POST", "/login/mfa", map[string]string{"code": codes[0]}); st != want {
			t.Errorf("use %d of a recovery code = %d %v, want %d", i+1, st, m, want)
		}
	}
}

func TestLockoutWithBackoff(t *testing.T) {
	fx := newFixture(t, Policy{LockoutAfter: 3, LockoutBase: time.Minute, LockoutMax: 10 * time.Minute})
	fx.user(t, "dan", false, Viewer)
	c := fx.client(t)
	try := func(pw string) int {
		st, _ := c.do("POST", "/login", map[string]string{"user": "dan", "password": pw})
		return st
	}
	for i := range 3 {
		if st := try("wrong password!!"); st != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d, want 401", i+1, st)
		}
	}
	if st := try("correct horse battery"); st != http.StatusTooManyRequests {
		t.Fatalf("right password while locked = %d, want 429", st)
	}
	fx.clock.Advance(61 * time.Second)
	if st := try("wrong password!!"); st != http.StatusUnauthorized {
		t.Fatalf("4th failure = %d", st)
	}
	// The 4th failure locks for 2 minutes: 61 s later it is still locked.
	fx.clock.Advance(61 * time.Second)
	if st := try("correct horse battery"); st != http.StatusTooManyRequests {
		t.Fatalf("after 61s of a doubled lockout = %d, want 429", st)
	}
	fx.clock.Advance(60 * time.Second)
	if st := try("correct horse battery"); st != http.StatusOK {
		t.Fatalf("after the lockout = %d, want 200", st)
	}
	recs, _ := fx.log.Records(context.Background(), audit.Query{Action: "auth.login_failed"})
	if len(recs) != 4 || recs[0].Actor != "dan" {
		t.Errorf("audit has %d auth.login_failed records, want 4", len(recs))
	}
}

func TestSessionExpiry(t *testing.T) {
	fx := newFixture(t, Policy{SessionIdle: 15 * time.Minute, SessionLifetime: time.Hour})
	fx.user(t, "eve", false, Viewer)
	c := fx.client(t)
	c.login("eve", "")
	// after advances the clock by d and wants the session's answer to be want.
	after := func(d time.Duration, want int, when string) {
		t.Helper()
		fx.clock.Advance(d)
		if st, _ := c.do("GET", "/api/v1/exceptions", nil); st != want {
			t.Fatalf("%s = %d, want %d", when, st, want)
		}
	}
	after(0, 204, "fresh session")
	after(14*time.Minute, 204, "after 14 min idle")
	after(15*time.Minute, 401, "after 15 min idle")
	// Absolute lifetime: active every 10 minutes, still ends after an hour.
	c.login("eve", "")
	for range 5 {
		after(10*time.Minute, 204, "active session")
	}
	after(10*time.Minute, 401, "after the absolute lifetime")
}

func TestSessionIDChangesAfterMFA(t *testing.T) {
	fx := newFixture(t, Policy{})
	secret := fx.user(t, "fay", true, Admin)
	c := fx.client(t)
	c.do("POST", "/login", map[string]string{"user": "fay", "password": "correct horse battery"})
	u, _ := url.Parse(fx.srv.URL)
	before := c.c.Jar.Cookies(u)
	fx.clock.Advance(30 * time.Second)
	code, _ := totp.GenerateCode(secret, fx.clock.Now())
	c.do("POST", "/login/mfa", map[string]string{"code": code})
	after := c.c.Jar.Cookies(u)
	if len(before) != 1 || len(after) != 1 || before[0].Value == after[0].Value {
		t.Fatalf("session cookie before %v after %v: want a new ID", before, after)
	}
	// The pre-MFA ID is dead.
	old := fx.client(t)
	old.c.Jar.SetCookies(u, before)
	if st, _ := old.do("GET", "/api/v1/whoami", nil); st != 401 {
		t.Errorf("old session ID = %d, want 401", st)
	}
}

func TestEnrolmentRequiredForChangingRoles(t *testing.T) {
	fx := newFixture(t, Policy{})
	fx.user(t, "gus", false, Requester) // no TOTP yet
	c := fx.client(t)
	_, m := c.do("POST", "/login", map[string]string{"user": "gus", "password": "correct horse battery"})
	if m["enrolling"] != true {
		t.Fatalf("login of a requester without TOTP = %v, want enrolling", m)
	}
	if st, _ := c.do("POST", "/api/v1/exceptions", map[string]string{}); st != 403 {
		t.Fatalf("request before enrolment = %d, want 403", st)
	}
	_, m = c.do("GET", "/account/mfa", nil)
	secret, _ := m["secret"].(string)
	code, _ := totp.GenerateCode(secret, fx.clock.Now())
	st, m := c.do("POST", "/account/mfa", map[string]string{"code": code})
	if st != 200 || len(m["recovery_codes"].([]any)) != 10 {
		t.Fatalf("confirm enrolment = %d %v", st, m)
	}
	if st, _ := c.do("GET", "/api/v1/exceptions", nil); st != 204 {
		t.Fatalf("after enrolment = %d, want 204", st)
	}
}

func TestSetupTokenOnce(t *testing.T) {
	fx := newFixture(t, Policy{})
	tok := fx.a.SetupToken()
	if tok == "" {
		t.Fatal("no setup token with no users")
	}
	c := fx.client(t)
	if st, _ := c.do("POST", "/setup", map[string]string{"token": "wrong", "user": "root", "password": "correct horse battery"}); st != 403 {
		t.Errorf("setup with a wrong token = %d, want 403", st)
	}
	if st, m := c.do("POST", "/setup", map[string]string{"token": tok, "user": "root", "password": "correct horse battery"}); st != 201 {
		t.Fatalf("setup = %d %v", st, m)
	}
	if st, _ := c.do("POST", "/setup", map[string]string{"token": tok, "user": "root2", "password": "correct horse battery"}); st != 403 {
		t.Errorf("second setup = %d, want 403", st)
	}
	users, _ := fx.a.Users(context.Background())
	if len(users) != 1 || users[0].Name != "root" || users[0].Roles[0] != Admin {
		t.Errorf("users after setup = %+v", users)
	}
}

func TestTokens(t *testing.T) {
	fx := newFixture(t, Policy{})
	secret := fx.user(t, "hal", true, Deployer, Auditor)
	c := fx.client(t)
	c.login("hal", secret)
	if st, _ := c.do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "admin"}); st != 403 {
		t.Errorf("token for a role not held = %d, want 403", st)
	}
	st, m := c.do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "auditor"})
	tok, _ := m["token"].(string)
	if st != 201 || !strings.HasPrefix(tok, "pgt_") {
		t.Fatalf("create token = %d %v", st, m)
	}
	var stored int
	fx.db.QueryRow(`SELECT count(*) FROM auth_tokens WHERE hash = ? AND hash != ?`, hashSecret(tok), tok).Scan(&stored)
	if stored != 1 {
		t.Error("token not stored as its hash")
	}
	api := fx.client(t)
	api.hdr.Set("Authorization", "Bearer "+tok)
	if st, _ := api.do("GET", "/api/v1/audit/export", nil); st != 204 {
		t.Errorf("auditor token on audit export = %d, want allowed", st)
	}
	if st, _ := api.do("POST", "/api/v1/approvals/1/approve", nil); st != 403 {
		t.Errorf("auditor token on approve = %d, want 403", st)
	}
	list, _ := fx.a.Tokens(context.Background(), "hal")
	if err := fx.a.RevokeToken(context.Background(), &Principal{User: "hal"}, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := api.do("GET", "/api/v1/audit/export", nil); st != 401 {
		t.Errorf("revoked token = %d, want 401", st)
	}
}

func TestBreakGlass(t *testing.T) {
	fx := newFixture(t, Policy{BreakGlassMax: 30 * time.Minute, SessionIdle: time.Hour})
	secret := fx.user(t, "max", true, Deployer)
	c := fx.client(t)
	c.login("max", secret)
	if st, _ := c.do("POST", "/api/v1/exceptions/1/approve", map[string]string{"remark": "x"}); st != 403 {
		t.Fatalf("deployer approving = %d, want 403", st)
	}
	st, m := c.do("POST", "/api/v1/breakglass", map[string]string{"role": "approver", "reason": "ransomware fix, approver on leave", "duration": "2h"})
	if st != 200 {
		t.Fatalf("break-glass = %d %v", st, m)
	}
	if until := m["until"].(string); !strings.HasPrefix(until, fx.clock.Now().Add(30*time.Minute).Format("2006-01-02T15:04")) {
		t.Errorf("elevation until %s, want capped at 30 minutes", until)
	}
	if st, _ := c.do("POST", "/api/v1/exceptions/1/approve", map[string]string{"remark": "x"}); st == 403 {
		t.Fatal("elevated deployer still refused approve")
	}
	if len(fx.a.Elevations()) != 1 {
		t.Error("elevation not listed")
	}
	fx.clock.Advance(31 * time.Minute)
	if st, _ := c.do("POST", "/api/v1/exceptions/1/approve", map[string]string{"remark": "x"}); st != 403 {
		t.Fatalf("after the elevation = %d, want 403", st)
	}
	recs, _ := fx.log.Records(context.Background(), audit.Query{Action: "breakglass."})
	if len(recs) != 2 || recs[0].Action != "breakglass.start" || recs[1].Action != "breakglass.expired" || recs[0].Details["reason"] == "" {
		t.Errorf("break-glass audit records = %+v", recs)
	}
}

func TestPasswordHash(t *testing.T) {
	h := hashPassword("correct horse battery", fastArgon)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash = %s", h)
	}
	for _, tt := range []struct {
		pw, hash string
		want     bool
	}{
		{"correct horse battery", h, true},
		{"correct horse batterx", h, false},
		{"correct horse battery", strings.Replace(h, "t=1", "t=2", 1), false},
		{"correct horse battery", "$argon2id$garbage", false},
		{"", "", false},
	} {
		if got := verifyPassword(tt.pw, tt.hash); got != tt.want {
			t.Errorf("verifyPassword(%q, %q) = %v, want %v", tt.pw, tt.hash, got, tt.want)
		}
	}
}

func FuzzReadInput(f *testing.F) {
	// Invariant: readInput never panics and returns either fields or an error.
	f.Add("application/json", `{"a":"b","n":1,"l":["x","y"]}`)
	f.Add("application/x-www-form-urlencoded", "a=b&c=%zz")
	f.Add("application/json", `{"a":{"b":1}}`)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, ct, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		in, err := readInput(r)
		if err == nil && in == nil {
			t.Fatal("no fields and no error")
		}
	})
}

func TestUnknownUserNotRecordedVerbatim(t *testing.T) {
	fx := newFixture(t, Policy{})
	c := fx.client(t)
	if st, _ := c.do("POST", "/login", map[string]string{"user": "MySecretPassw0rd!", "password": "x"}); st != 401 {
		t.Fatalf("unknown user = %d", st)
	}
	recs, _ := fx.log.Records(context.Background(), audit.Query{Action: "auth.login_failed"})
	if len(recs) != 1 {
		t.Fatalf("records = %d", len(recs))
	}
	b, _ := json.Marshal(recs[0])
	if strings.Contains(string(b), "MySecretPassw0rd") || recs[0].Details["name_digest"] == "" {
		t.Errorf("record %s holds the typed name or no digest of it", b)
	}
}
