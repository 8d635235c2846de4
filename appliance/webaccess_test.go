package appliance

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/appliance/logring"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/test/netlab"
)

// runLogged starts a System on cfg logging as serve does (a ring for the status page in
// front of the console) and waits until it is ready; it returns the console's output.
// clk, if given, is its clock.
func runLogged(t *testing.T, cfg *config.Config, clk ...clock.Clock) (*System, *netlab.Buffer) {
	t.Helper()
	console := &netlab.Buffer{}
	ring := logring.New(slog.NewJSONHandler(console, nil), 200)
	opts := Options{Build: Build{Version: "test"}, Logger: slog.New(ring), LogRing: ring}
	if len(clk) > 0 {
		opts.Clock = clk[0]
	}
	sys, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := sys.Start(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return sys, console
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, sys *System) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: "http://" + sys.AdminAddr(), c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends method path with body as JSON (a string as is) and accept; it returns the
// answer's status, header and body.
func (b *browser) do(method, path string, body any, accept string) (int, http.Header, string) {
	b.t.Helper()
	resp, raw := httpapitest.Do(b.t, b.c, httpapitest.NewRequest(b.t, method, b.base+path, body, "Accept", accept))
	return resp.StatusCode, resp.Header, string(raw)
}

const testPassword = "correct horse battery staple"

// setupAdmin creates the first admin with the setup token and logs the browser in; the
// admin has no second factor yet (enrolling).
func setupAdmin(t *testing.T, sys *System, b *browser) {
	t.Helper()
	tok := sys.auth.SetupToken()
	if tok == "" {
		t.Fatal("no setup token on a fresh System")
	}
	if code, _, body := b.do("POST", "/setup", map[string]string{"token": tok, "user": "ada", "password": testPassword}, "application/json"); code != http.StatusCreated {
		t.Fatalf("setup = %d %s", code, body)
	}
	if code, _, body := b.do("POST", "/login", map[string]string{"user": "ada", "password": testPassword}, "application/json"); code != http.StatusOK || !strings.Contains(body, `"enrolling": true`) {
		t.Fatalf("login = %d %s, want enrolling", code, body)
	}
}

// TestEnrolmentQRCodeScans: the enrolment page's QR code is a PNG under the page's CSP
// (not html/template's "#ZgotmplZ") and decodes to the otpauth URL of the secret shown.
func TestEnrolmentQRCodeScans(t *testing.T) {
	sys, _ := runLogged(t, testConfig(t))
	b := newBrowser(t, sys)
	setupAdmin(t, sys, b)
	code, hdr, page := b.do("GET", "/account/mfa", nil, "text/html")
	if code != http.StatusOK {
		t.Fatalf("enrolment page = %d %s", code, page)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:") || !strings.Contains(csp, "script-src 'none'") {
		t.Errorf("CSP %q: want data: images allowed and no script", csp)
	}
	m := regexp.MustCompile(`<img src="([^"]*)"[^>]*id="qr"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("enrolment page has no QR image:\n%s", page)
	}
	src := html.UnescapeString(m[1])
	b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
	if !ok {
		t.Fatalf("QR image src = %.60q, want a data:image/png URL", src)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("QR image base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("QR image PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
		t.Fatalf("QR image is %v, too small to scan", r)
	}
	text := decodeQR(t, img)
	secret := regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`).FindStringSubmatch(page)
	if secret == nil {
		t.Fatal("enrolment page shows no secret")
	}
	if !strings.HasPrefix(text, "otpauth://totp/") || !strings.Contains(text, "secret="+secret[1]) {
		t.Errorf("QR code says %q, want the otpauth URL of secret %s", text, secret[1])
	}
}

// decodeQR reads the QR code in img as a phone's scanner would.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText()
}

// TestSetupTokenOnlyInTheJournal: the one-time setup token (and the effective config)
// reach the console but no answer to anyone not logged in: not the status page's recent
// log in HTML or JSON, nor any other GET route an anonymous loopback client may try.
func TestSetupTokenOnlyInTheJournal(t *testing.T) {
	sys, console := runLogged(t, testConfig(t))
	tok := sys.auth.SetupToken()
	if tok == "" || !strings.Contains(console.String(), tok) {
		t.Fatalf("the console lacks the setup token %q:\n%s", tok, console.String())
	}
	b := newBrowser(t, sys)
	pages := 0
	for _, pr := range auth.Probes(adminPatterns(t, sys.admin.mux)) {
		if pr.Method != http.MethodGet {
			continue
		}
		for _, accept := range []string{"text/html", "application/json"} {
			code, hdr, body := b.do("GET", pr.Path, nil, accept)
			if strings.Contains(body, tok) || strings.Contains(hdr.Get("Location"), tok) {
				t.Errorf("anonymous GET %s (%s) = %d shows the setup token", pr.Path, accept, code)
			}
			if pr.Pattern == "GET /{$}" {
				pages++
				if code != http.StatusOK || !strings.Contains(body, "first-run setup") || !strings.Contains(body, logring.Withheld) {
					t.Errorf("anonymous status page (%s) = %d; want 200 with the setup line, its token withheld:\n%s", accept, code, body)
				}
			}
		}
	}
	if pages != 2 {
		t.Fatalf("the status page was fetched %d times, want 2 (HTML and JSON)", pages)
	}
}

// TestLoopbackViewerSeesStatusAndMetricsOnly: with auth.loopback_viewer (the dev
// config), an anonymous client on loopback gets the status page (HTML and JSON) and the
// metrics, as the README says, and 401/403 from every other route that is not public.
func TestLoopbackViewerSeesStatusAndMetricsOnly(t *testing.T) {
	cfg := testConfig(t)
	if !cfg.Auth.LoopbackViewer {
		t.Fatal("the dev config has no loopback_viewer")
	}
	sys, _ := runLogged(t, cfg)
	b := newBrowser(t, sys)
	open := map[string]bool{"GET /{$}": true, "GET /metrics": true, "GET /api/v1/status": true}
	for _, pr := range auth.Probes(adminPatterns(t, sys.admin.mux)) {
		if pr.Perm == auth.Public {
			continue // probes, static files, login and setup pages: anyone
		}
		code, _, body := b.do(pr.Method, pr.Path, nil, "application/json")
		switch {
		case open[pr.Pattern] && code != http.StatusOK:
			t.Errorf("anonymous %s %s = %d %.80s, want 200", pr.Method, pr.Path, code, body)
		case !open[pr.Pattern] && code != http.StatusUnauthorized && code != http.StatusForbidden:
			t.Errorf("anonymous %s %s = %d %.80s, want 401 or 403", pr.Method, pr.Path, code, body)
		}
	}
}

// apiToken makes a user holding role and returns "Bearer <token>" for them: what a
// script or Prometheus sends.
func apiToken(t *testing.T, sys *System, role auth.Role) string {
	t.Helper()
	ctx := context.Background()
	name := "token-" + string(role)
	if err := sys.auth.CreateUser(ctx, nil, name, testPassword, []auth.Role{role}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := sys.auth.CreateToken(ctx, &auth.Principal{User: name, Roles: []auth.Role{role}, Method: "password+totp"}, "test", role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

// TestAdminAPIRefusesUnknownKeysAndMissingObjects walks the admin routes with a token
// that may use each: every route that reads a JSON body refuses a key it does not know,
// naming it, and every GET of an object by id or name answers 404 when there is none.
func TestAdminAPIRefusesUnknownKeysAndMissingObjects(t *testing.T) {
	sys, _ := runLogged(t, testConfig(t))
	tokens := map[auth.Role]string{}
	for _, role := range auth.Roles {
		tokens[role] = apiToken(t, sys, role)
	}
	// Not walked for keys: routes that read no body at all, the KEV and advisory imports
	// (their bodies are the feeds' files, whose fields are the publishers'), and the approvals
	// (appliance/auth/approvals.go, moving into appliance/rollout).
	noBody := map[string]bool{"POST /logout": true, "POST /api/v1/scans": true, "POST /api/v1/releases/kev": true,
		"POST /api/v1/sources/{name}/check": true, "POST /api/v1/advisory/feeds/{name}/fetch": true, "POST /api/v1/advisory/import": true}
	walked := 0
	for _, pr := range auth.Probes(adminPatterns(t, sys.admin.mux)) {
		var bearer string
		for _, role := range auth.Roles {
			if (&auth.Principal{Roles: []auth.Role{role}}).Can(pr.Perm) {
				bearer = tokens[role]
				break
			}
		}
		if bearer == "" && pr.Perm != auth.Public {
			continue // an action nobody may take
		}
		var body io.Reader
		switch {
		case pr.Method == http.MethodGet && strings.Contains(strings.ReplaceAll(pr.Pattern, "{$}", ""), "{"):
		case (pr.Method == http.MethodPost || pr.Method == http.MethodPut) && !noBody[pr.Pattern]:
			body = strings.NewReader(`{"colour": "red"}`)
		default:
			continue
		}
		walked++
		if pr.Perm == auth.Public {
			bearer = ""
		}
		code, raw := httpapitest.Fetch(t, pr.Method, "http://"+sys.AdminAddr()+pr.Path, body,
			"Accept", "application/json", "Content-Type", "application/json", "Authorization", bearer)
		switch {
		case body == nil && code != http.StatusNotFound:
			t.Errorf("GET %s (nothing there) = %d %.120s, want 404", pr.Path, code, raw)
		case body != nil && (code != http.StatusBadRequest || !strings.Contains(raw, "colour")):
			t.Errorf("%s %s with an unknown key = %d %.160s, want 400 naming \"colour\"", pr.Method, pr.Path, code, raw)
		}
	}
	if walked < 20 {
		t.Fatalf("walked only %d routes", walked)
	}
}
