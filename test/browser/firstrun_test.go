package browser

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/notify/notifytest"
)

// hookPost is one POST the test's webhook receiver took.
type hookPost struct {
	Event  string
	Signed bool
	Body   string
}

// webhookReceiver is an httptest server that keeps each POST and checks its signature.
func webhookReceiver(t *testing.T, secret string) (string, chan hookPost) {
	t.Helper()
	posts := make(chan hookPost, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts <- hookPost{Event: r.Header.Get(notify.EventHeader), Signed: notify.Verify([]byte(secret), b, r.Header.Get(notify.SignatureHeader)), Body: string(b)}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", posts
}

// firstRunConfig writes the dev config into a fresh directory, on loopback ports, with
// self_with_review and notifications to the SMTP sink and the webhook receiver; it
// returns the file's path.
func firstRunConfig(t *testing.T, sink *notifytest.SMTPSink, hookURL, hookSecret string) string {
	t.Helper()
	dev, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(dev, &c); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sub := func(k string) map[string]any {
		m, _ := c[k].(map[string]any)
		if m == nil {
			m = map[string]any{}
			c[k] = m
		}
		return m
	}
	sub("state")["dir"] = filepath.Join(dir, "state")
	sub("admin")["listen"] = "127.0.0.1:0"
	sub("distribution")["listen"] = "127.0.0.2:0" // loopback too; must differ from admin.listen
	sub("resolver")["listen"] = []string{"127.0.0.1:0"}
	sub("auth")["loopback_viewer"] = false
	sub("rollout")["approval_policy"] = "self_with_review"
	c["notify"] = map[string]any{
		"enabled":  true,
		"smtp":     map[string]any{"host": sink.Host, "port": sink.Port, "starttls": false, "from": "patchgate@pharmacy.example"},
		"webhooks": []map[string]any{{"name": "msp", "url": hookURL, "secret": hookSecret}},
		"recipients": []map[string]any{{"email": "it@pharmacy.example", "events": []string{"all"}},
			{"webhook": "msp", "events": []string{"all"}}},
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "patchgate.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	lists, _ := filepath.Abs("../../configs/allowlists")
	if err := os.Symlink(lists, filepath.Join(dir, "allowlists")); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFirstRunSelfReviewInBrowser walks a fresh appliance as a one-person pharmacy and
// its MSP do, in headless Chromium with no script on any page: the owner takes the setup
// token from the log, creates the first admin, enrols the second factor (reading the
// secret off the enrolment page), runs the first-run wizard (DNS upstreams, a vendor
// source, a second maintenance window previewed before saving, notifications), adds the
// MSP's account, makes a release and its rollout, submits it (the approval-waiting
// notice reaches the SMTP sink and the signed webhook), and approves it under
// self_with_review with a justification. The MSP logs in, countersigns the review and
// asks for a patch exception from a device's page. Every page is kept as a screenshot.
func TestFirstRunSelfReviewInBrowser(t *testing.T) {
	chrome := chromium(t)
	sink := notifytest.NewSMTPSink(t, false) // loopback: STARTTLS may be off
	const hookSecret = "0123456789abcdef-msp-webhook"
	hookURL, hooks := webhookReceiver(t, hookSecret)
	path := firstRunConfig(t, sink, hookURL, hookSecret)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sys, base, logs := runAppliance(t, cfg, appliance.Options{ConfigPath: path})

	assetID := observePrinter(t, sys)

	bctx := newBrowser(t, chrome, 5*time.Minute) // generous: the machine is shared
	shots := map[string]*[]byte{}
	shot := func(name string) chromedp.Action {
		b := new([]byte)
		shots[name] = b
		return chromedp.FullScreenshot(b, 100)
	}
	run := func(who string, actions ...chromedp.Action) {
		t.Helper()
		if err := runSteps(t, bctx, actions...); err != nil {
			t.Fatalf("browser, %s: %v\nlog:\n%s", who, err, tail(logs.String(), 3000))
		}
	}

	// Setup: the token, the first admin, the second factor.
	var secret string
	run("setup",
		chromedp.Navigate(base+"/setup"),
		chromedp.WaitVisible("#setup", chromedp.ByID),
		chromedp.SendKeys("#token", setupToken(t, logs), chromedp.ByID),
		chromedp.SendKeys("#user", "owner", chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		shot("01-setup.png"),
		loads{chromedp.Submit("#setup", chromedp.ByID)},
		chromedp.WaitVisible("#login", chromedp.ByID),
		chromedp.SendKeys("#user", "owner", chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		loads{chromedp.Submit("#login", chromedp.ByID)},
		chromedp.WaitVisible("#qr", chromedp.ByID),
		chromedp.Text("#secret", &secret, chromedp.ByID),
		shot("02-enrol.png"),
	)
	code, err := totp.GenerateCode(strings.TrimSpace(secret), time.Now())
	if err != nil {
		t.Fatalf("the enrolment page's secret %q: %v", secret, err)
	}
	run("enrolment",
		chromedp.SendKeys("#code", code, chromedp.ByID),
		loads{chromedp.Submit("#enrol", chromedp.ByID)},
		chromedp.WaitVisible("#codes", chromedp.ByID),
	)

	// The wizard.
	var preview, finished string
	run("wizard",
		chromedp.Navigate(base+"/wizard"),
		chromedp.WaitVisible("#start", chromedp.ByID),
		loads{chromedp.Click("#start", chromedp.ByID)},
		chromedp.WaitVisible("#skip", chromedp.ByID),
		shot("03-wizard-segments.png"),
		loads{chromedp.Click("#skip", chromedp.ByID)}, // segments: the loopback one stays
		chromedp.WaitVisible("#f-upstreams", chromedp.ByID),
		chromedp.SendKeys("#f-upstreams", "127.0.0.1:1 udp", chromedp.ByID), // loopback: no traffic leaves the test
		loads{chromedp.Click("#save", chromedp.ByID)},
		chromedp.WaitVisible(`#f-src\.name`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-src\.name`, "printer-fw", chromedp.ByQuery),
		chromedp.SendKeys(`#f-src\.url`, "http://127.0.0.1:1/fw-4.2.bin", chromedp.ByQuery),
		chromedp.SendKeys(`#f-src\.sha256`, strings.Repeat("ab", 32), chromedp.ByQuery),
		shot("04-wizard-sources.png"),
		loads{chromedp.Click("#save", chromedp.ByID)},
		chromedp.WaitVisible(`#f-win1\.name`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-win1\.name`, "weekend", chromedp.ByQuery),
		chromedp.SendKeys(`#f-win1\.cron`, "0 2 * * 6", chromedp.ByQuery),
		chromedp.SendKeys(`#f-win1\.duration`, "4h", chromedp.ByQuery),
		loads{chromedp.Click("#save", chromedp.ByID)},
		chromedp.WaitNotPresent(`#f-win1\.name`, chromedp.ByQuery), // on to the second-factor step
		chromedp.Navigate(base+"/wizard/window"),
		chromedp.WaitVisible(`ul.preview`, chromedp.ByQuery),
		chromedp.Text("#wizard-form", &preview, chromedp.ByID),
		shot("05-wizard-window.png"),
		chromedp.Navigate(base+"/wizard/backup"),
		chromedp.WaitVisible("#skip", chromedp.ByID),
		loads{chromedp.Click("#skip", chromedp.ByID)},
		chromedp.WaitVisible("#f-host", chromedp.ByID), // notifications: as the file has them
		shot("06-wizard-notify.png"),
		loads{chromedp.Click("#save", chromedp.ByID)},
		chromedp.WaitVisible("#finish", chromedp.ByID),
		loads{chromedp.Click("#finish", chromedp.ByID)},
		chromedp.WaitVisible("#start", chromedp.ByID),
		chromedp.Text("main", &finished, chromedp.ByQuery),
	)
	if strings.Count(preview, "opens ") < 2*5 {
		t.Errorf("window step preview lacks the next openings of both windows: %q", preview)
	}
	if !strings.Contains(finished, "finished") {
		t.Errorf("wizard after finishing: %q", finished)
	}
	file, _ := os.ReadFile(path)
	for _, want := range []string{"127.0.0.1:1", "name: printer-fw", "name: weekend", "email: it@pharmacy.example"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("config file after the wizard lacks %q:\n%s", want, file)
		}
	}
	if _, err := config.Load(path); err != nil {
		t.Errorf("config file after the wizard: %v", err)
	}

	// The MSP's account, then a release and its rollout, self-approved.
	var reviewText string
	run("owner",
		chromedp.Navigate(base+"/users"),
		chromedp.WaitVisible("#add-user", chromedp.ByID),
		chromedp.SendKeys(`#add-user input[name="name"]`, "msp", chromedp.ByQuery),
		chromedp.Click(`#add-user input[value="requester"]`, chromedp.ByQuery),
		chromedp.Click(`#add-user input[value="approver"]`, chromedp.ByQuery),
		chromedp.SendKeys(`#add-user input[name="password"]`, password, chromedp.ByQuery),
		loads{chromedp.Submit("#add-user", chromedp.ByID)},
		chromedp.WaitVisible("#roles-msp", chromedp.ByID),
		shot("07-users.png"),

		newRelease(base, "Label printer firmware 4.2"),
		fillRollout(base, "printers reboot once", "printed labels on the spare printer", "fw 4.1 from the cache"),
		loads{chromedp.Submit("#new-rollout", chromedp.ByID)},
		chromedp.WaitVisible(`#rollouts a[href="/rollouts/1"]`, chromedp.ByQuery),
		chromedp.Navigate(base+"/rollouts/1"),
		chromedp.WaitVisible("#submit", chromedp.ByID),
		shot("08-rollout.png"),
		// On to the reviews page rather than the same one, to see the submission land.
		chromedp.SetValue(`form[action$="/submit"] input[name="return"]`, "/reviews", chromedp.ByQuery),
		loads{chromedp.Click("#submit", chromedp.ByID)},
		chromedp.WaitVisible("#mine-1", chromedp.ByID),
		chromedp.SendKeys("#mine-1 .justification", "one-person pharmacy; the MSP countersigns weekly", chromedp.ByQuery),
		shot("09-self-approve.png"),
		loads{chromedp.Click("#mine-1 button.self-approve", chromedp.ByQuery)},
		chromedp.WaitVisible("#review-1", chromedp.ByID),
		chromedp.Text("#review-1", &reviewText, chromedp.ByID),
		shot("10-reviews.png"),

		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible("#logout", chromedp.ByID),
		loads{chromedp.Click("#logout", chromedp.ByID)},
		chromedp.WaitVisible("#user", chromedp.ByID),
	)
	if !strings.Contains(reviewText, "owner") || !strings.Contains(reviewText, "waiting") {
		t.Errorf("review after the self-approval: %q", reviewText)
	}

	// The approval-waiting notice, by email and by the signed webhook.
	for i := 0; ; i++ {
		m := sink.Next(t)
		if text := notifytest.MailText(t, m.Data); strings.Contains(text, "waits for approval") {
			if m.To != "it@pharmacy.example" {
				t.Errorf("approval mail to %q", m.To)
			}
			break
		}
		if i > 10 {
			t.Fatal("no approval-waiting mail among the first ten")
		}
	}
	for i := 0; ; i++ {
		var p hookPost
		select {
		case p = <-hooks:
		case <-time.After(2 * time.Minute):
			t.Fatal("the webhook receiver got no approval-waiting POST")
		}
		if p.Event == string(notify.ApprovalWaiting) {
			if !p.Signed {
				t.Errorf("approval webhook not signed with the shared secret: %s", p.Body)
			}
			break
		}
		if i > 10 {
			t.Fatal("no approval-waiting webhook among the first ten")
		}
	}

	// The MSP countersigns and asks for an exception from the printer's page.
	mspSecret := newAPI(t, base).enrol("msp")
	mspCode, _ := totp.GenerateCode(mspSecret, time.Now())
	var countersigned, exceptions string
	run("msp",
		chromedp.Navigate(base+"/reviews"),
		login("msp", mspCode),
		chromedp.WaitVisible("#review-1", chromedp.ByID),
		chromedp.SendKeys(`#review-1 input[name="remark"]`, "release notes and test evidence checked", chromedp.ByQuery),
		loads{chromedp.Click("#review-1 button.countersign", chromedp.ByQuery)},
		chromedp.WaitNotPresent("#review-1 button.countersign", chromedp.ByQuery),
		chromedp.Text("#review-1", &countersigned, chromedp.ByID),
		shot("11-countersigned.png"),

		chromedp.Navigate(base+"/inventory/"+assetID),
		chromedp.WaitVisible("#exception", chromedp.ByID),
		chromedp.SendKeys(`#exception input[name="cve"]`, "CVE-2026-0001", chromedp.ByQuery),
		chromedp.SendKeys(`#exception input[name="reason"]`, "vendor has no fix for the kiosk build yet", chromedp.ByQuery),
		chromedp.SendKeys(`#exception input[name="compensating_controls"]`, "kiosk VLAN, no internet", chromedp.ByQuery),
		chromedp.SetValue(`#exception input[name="expires_at"]`, time.Now().AddDate(0, 1, 0).Format("2006-01-02"), chromedp.ByQuery),
		shot("12-asset-exception.png"),
		// Back to the exceptions list rather than the same page, to see the request land.
		chromedp.SetValue(`#exception input[name="return"]`, "/exceptions", chromedp.ByQuery),
		loads{chromedp.Submit("#exception", chromedp.ByID)},
		chromedp.WaitVisible("#exceptions", chromedp.ByID),
		chromedp.Text("main", &exceptions, chromedp.ByQuery),
		shot("13-exceptions.png"),
	)
	if !strings.Contains(countersigned, "msp") || !strings.Contains(countersigned, "release notes and test evidence checked") {
		t.Errorf("review after the countersignature: %q", countersigned)
	}
	if !strings.Contains(exceptions, "vendor has no fix for the kiosk build yet") {
		t.Errorf("exceptions page lacks the requested exception: %q", exceptions)
	}
	out := map[string][]byte{}
	for name, b := range shots {
		out[name] = *b
	}
	saveShots(t, out)
}
