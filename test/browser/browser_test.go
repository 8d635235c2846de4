package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/test/netlab"
)

const password = "correct horse battery staple"

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("needs Debian's chromium (apt-get install chromium) for the browser test")
	return ""
}

// api is a plain HTTP client with its own session, for the set-up steps.
type api struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newAPI(t *testing.T, base string) *api {
	jar, _ := cookiejar.New(nil)
	return &api{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (a *api) call(method, path string, body any, want int) map[string]any {
	a.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

// enrol logs user in and enrols a TOTP secret using the previous time step's code, so
// that the current step is still unused for the next login. It returns the secret.
func (a *api) enrol(user string) string {
	a.t.Helper()
	a.call("POST", "/login", map[string]string{"user": user, "password": password}, 200)
	secret := a.call("GET", "/account/mfa", nil, 200)["secret"].(string)
	code, _ := totp.GenerateCode(secret, time.Now().Add(-30*time.Second))
	a.call("POST", "/account/mfa", map[string]string{"code": code}, 200)
	return secret
}

// startAppliance runs the dev config on loopback (no anonymous viewer), creates the
// first admin with the setup token from the log and enrols its second factor; it
// returns the System, the admin listener's URL, the admin's client and the log.
func startAppliance(t *testing.T) (*appliance.System, string, *api, *netlab.Buffer) {
	t.Helper()
	cfg, err := config.Load("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.State.Dir = t.TempDir()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Distribution.Listen = "127.0.0.1:0"
	cfg.Auth.LoopbackViewer = false
	sys, base, logs := runAppliance(t, cfg, appliance.Options{})

	// First-run setup with the token from the log.
	admin := newAPI(t, base)
	admin.call("POST", "/setup", map[string]string{"token": setupToken(t, logs), "user": "admin", "password": password}, 201)
	admin.enrol("admin")
	return sys, base, admin, logs
}

// runAppliance runs cfg until the test ends; it returns the System, the admin
// listener's URL and the log.
func runAppliance(t *testing.T, cfg *config.Config, opts appliance.Options) (*appliance.System, string, *netlab.Buffer) {
	t.Helper()
	logs := &netlab.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	sys, err := appliance.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; sys.Close() })
	return sys, "http://" + sys.AdminAddr(), logs
}

// setupToken is the one-time setup token the first start logged.
func setupToken(t *testing.T, logs *netlab.Buffer) string {
	t.Helper()
	m := regexp.MustCompile(`setup_token=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup token in the log:\n%s", logs.String())
	}
	return m[1]
}

// newBrowser starts a headless Chromium for the test; it returns its context (bounded
// to timeout).
func newBrowser(t *testing.T, chrome string, timeout time.Duration) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write into the profile after
	// the browser is stopped, which fails t.TempDir's cleanup; this one is removed last,
	// and a leftover in /tmp is not a test failure.
	profile, err := os.MkdirTemp("", "patchgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 1800))
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	bctx, cancelT := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancelT)
	return bctx
}

// loads runs an action that sends the browser to another page (a form sent, a link or
// button followed) and returns once that page has loaded, or fails when it answered an
// error status. Waiting for an element alone is not enough after a form: the element may
// still be on the page the form was sent from, and a screenshot taken while the next
// page loads can hang.
type loads struct{ chromedp.Action }

func (l loads) Do(ctx context.Context) error {
	resp, err := chromedp.RunResponse(ctx, l.Action)
	if err != nil {
		return err
	}
	if resp != nil && resp.Status >= 400 {
		return fmt.Errorf("%s answered %d %s", resp.URL, resp.Status, resp.StatusText)
	}
	return nil
}

// login fills the login page and then the second-factor page the browser is sent to.
func login(user, code string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.WaitVisible("#user", chromedp.ByID),
		chromedp.SendKeys("#user", user, chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		loads{chromedp.Submit("#login", chromedp.ByID)},
		chromedp.WaitVisible("#code", chromedp.ByID),
		chromedp.SendKeys("#code", code, chromedp.ByID),
		loads{chromedp.Submit("#mfa", chromedp.ByID)},
	}
}

// saveShots keeps the screenshots in the test's artifact directory.
func saveShots(t *testing.T, shots map[string][]byte) {
	t.Helper()
	dir := t.ArtifactDir()
	for name, b := range shots {
		if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG (%d bytes)", name, len(b))
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
}

func TestApproveRolloutInBrowser(t *testing.T) {
	chrome := chromium(t)
	_, base, admin, logs := startAppliance(t)
	// The admin makes the other users.
	admin.call("POST", "/api/v1/users", map[string]string{"name": "rita", "roles": "requester", "password": password}, 201)
	admin.call("POST", "/api/v1/users", map[string]string{"name": "alan", "roles": "approver", "password": password}, 201)

	// Rita asks for a rollout.
	rita := newAPI(t, base)
	rita.enrol("rita")
	if resp, err := rita.c.Get(base + "/api/v1/rollouts"); err != nil || resp.StatusCode == http.StatusNotFound {
		t.Skip("the rollout admin API is not mounted on the admin listener in this build")
	} else {
		resp.Body.Close()
	}
	rel := rita.call("POST", "/api/v1/releases", map[string]any{"name": "Label printer firmware 2.4", "repo": "vendor-firmware",
		"targets": []string{"printers/zt410-2.4.bin"}, "severity": "high"}, 200)
	ro := rita.call("POST", "/api/v1/rollouts", map[string]any{"release_id": rel["id"], "risk": "low: printers only",
		"test_evidence": "labels printed on the pilot printer", "rollback_plan": "reflash 2.3 from the cache"}, 200)
	id := fmt.Sprint(ro["id"])
	rita.call("POST", "/api/v1/rollouts/"+id+"/submit", map[string]any{}, 200)

	// Alan approves it in the browser, logging in with his TOTP code.
	alanAPI := newAPI(t, base)
	secret := alanAPI.enrol("alan")
	code, _ := totp.GenerateCode(secret, time.Now())
	bctx := newBrowser(t, chrome, 3*time.Minute)

	var approvalsText, shot []byte
	var afterText string
	err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/approvals"), // redirected to the login page
		login("alan", code),
		chromedp.WaitVisible("#rollout-"+id, chromedp.ByID),
		chromedp.CaptureScreenshot(&approvalsText),
		chromedp.SendKeys("#rollout-"+id+" .remark", "pilot evidence reviewed; go", chromedp.ByQuery),
		loads{chromedp.Click("#rollout-"+id+" button.approve", chromedp.ByQuery)},
		chromedp.WaitVisible("#none", chromedp.ByID),
		chromedp.Text("main", &afterText, chromedp.ByQuery),
		chromedp.Navigate(base+"/compliance"),
		chromedp.WaitVisible("svg.chart", chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
	)
	if err != nil {
		t.Fatalf("browser: %v\nlog:\n%s", err, tail(logs.String(), 3000))
	}
	if !strings.Contains(afterText, "Nothing is waiting for approval") {
		t.Errorf("approvals page after approving: %q", afterText)
	}
	got := rita.call("GET", "/api/v1/rollouts/"+id, nil, 200)
	if got["state"] != "approved" {
		t.Errorf("rollout state after the browser approval = %v, want approved", got["state"])
	}
	approvals, _ := got["approvals"].([]any)
	if len(approvals) != 1 || approvals[0].(map[string]any)["by"] != "alan" {
		t.Errorf("approvals = %v, want alan's", got["approvals"])
	}
	// The approval is in the audit trail with who, how and from where.
	req, _ := http.NewRequest("GET", base+"/api/v1/audit?action=rollout.approve", nil)
	resp, err := admin.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	json.NewDecoder(resp.Body).Decode(&recs)
	resp.Body.Close()
	if len(recs) != 1 || recs[0]["actor"] != "alan" || recs[0]["auth_method"] != "password+totp" || recs[0]["role"] != "approver" || recs[0]["source"] != "127.0.0.1" {
		t.Errorf("audit records of the approval = %v, want one by alan (approver, password+totp, 127.0.0.1)", recs)
	}
	saveShots(t, map[string][]byte{"compliance.png": shot, "approvals.png": approvalsText})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
