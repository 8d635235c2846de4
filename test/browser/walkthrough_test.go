package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/netscan"
)

// TestDailyTaskInBrowser walks a day's work as the people who run a site do it, in a
// real headless Chromium, with no script on any page: Rita (requester and deployer)
// logs in with her second factor, edits a device's attributes on its page, makes a
// ring, a release from a target and a rollout with its stage, and submits it; she
// makes an API token on her account page and revokes it; she logs out, and Alan
// (approver) logs in and approves the rollout on the approvals page.
func TestDailyTaskInBrowser(t *testing.T) {
	chrome := chromium(t)
	sys, base, admin, logs := startAppliance(t)
	admin.call("POST", "/api/v1/users", map[string]any{"name": "rita", "roles": []string{"requester", "deployer"}, "password": password}, 201)
	admin.call("POST", "/api/v1/users", map[string]string{"name": "alan", "roles": "approver", "password": password}, 201)
	ritaSecret, alanSecret := newAPI(t, base).enrol("rita"), newAPI(t, base).enrol("alan")

	assetID := observePrinter(t, sys)

	bctx := newBrowser(t, chrome, 5*time.Minute) // a budget, not a speed check: CI shares 2 cores with the race-built suite
	ritaCode, _ := totp.GenerateCode(ritaSecret, time.Now())
	shots := map[string]*[]byte{}
	shot := func(name string) chromedp.Action {
		b := new([]byte)
		shots[name] = b
		return chromedp.FullScreenshot(b, 100)
	}
	var assetText, rolloutText, afterText, token string
	var tokenAnswers []int
	const tokenForm = `form[action="/api/v1/tokens"]`
	err := runSteps(t, bctx,
		chromedp.Navigate(base+"/inventory"), // redirected to the login page
		login("rita", ritaCode),
		chromedp.WaitVisible("#assets", chromedp.ByID),
		shot("inventory.png"),
		loads{chromedp.Click(`#assets a[href^="/inventory/"]`, chromedp.ByQuery)},
		chromedp.WaitVisible("#asset-edit", chromedp.ByID),
		chromedp.SendKeys("#owner", "pharmacy lead", chromedp.ByID),
		chromedp.SetValue("#criticality", "high", chromedp.ByID),
		chromedp.SetValue("#ephi", "yes", chromedp.ByID),
		chromedp.SendKeys("#tags", "front-desk", chromedp.ByID),
		loads{chromedp.Submit("#asset-edit", chromedp.ByID)},
		chromedp.WaitVisible("#history", chromedp.ByID),
		chromedp.Text("main", &assetText, chromedp.ByQuery),
		shot("asset.png"),

		chromedp.Navigate(base+"/rings"),
		chromedp.WaitVisible("#new-ring", chromedp.ByID),
		chromedp.SendKeys(`#new-ring input[name="name"]`, "pilot", chromedp.ByQuery),
		chromedp.SendKeys(`#new-ring input[name="selector.tags"]`, "front-desk", chromedp.ByQuery),
		loads{chromedp.Submit("#new-ring", chromedp.ByID)},
		chromedp.WaitVisible("#ring-pilot", chromedp.ByID),
		shot("rings.png"),

		newRelease(base, "Label printer firmware 2.4"),
		shot("releases.png"),

		fillRollout(base, "low: printers only", "labels printed on the pilot printer", "reflash 2.3 from the cache"),
		shot("rollout-new.png"),
		loads{chromedp.Submit("#new-rollout", chromedp.ByID)},
		chromedp.WaitVisible(`#rollouts a[href="/rollouts/1"]`, chromedp.ByQuery),
		loads{chromedp.Click(`#rollouts a[href="/rollouts/1"]`, chromedp.ByQuery)},
		chromedp.WaitVisible("#submit", chromedp.ByID),
		loads{chromedp.Click("#submit", chromedp.ByID)},
		chromedp.WaitVisible("#rollout", chromedp.ByID),
		chromedp.Text("#rollout", &rolloutText, chromedp.ByID),
		shot("rollout.png"),

		// An API token for a script, made and then revoked on the account page.
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(tokenForm, chromedp.ByQuery),
		chromedp.SendKeys(tokenForm+` input[name="name"]`, "nightly export", chromedp.ByQuery),
		chromedp.SetValue(tokenForm+` select[name="role"]`, "deployer", chromedp.ByQuery),
		loads{chromedp.Submit(tokenForm, chromedp.ByQuery)},
		chromedp.Text("#new-token", &token, chromedp.ByID),
		chromedp.ActionFunc(func(context.Context) error {
			tokenAnswers = append(tokenAnswers, bearerStatus(t, base, token))
			return nil
		}),
		loads{chromedp.Click(`form[action$="/revoke"] button`, chromedp.ByQuery)},
		chromedp.WaitVisible(`span.tag.bad`, chromedp.ByQuery), // the token's row says revoked
		chromedp.ActionFunc(func(context.Context) error {
			tokenAnswers = append(tokenAnswers, bearerStatus(t, base, token))
			return nil
		}),

		chromedp.WaitVisible("#logout", chromedp.ByID),
		loads{chromedp.Click("#logout", chromedp.ByID)},
		chromedp.WaitVisible("#user", chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("browser, as rita: %v\nlog:\n%s", err, tail(logs.String(), 3000))
	}
	if fmt.Sprint(tokenAnswers) != "[200 401]" {
		t.Errorf("GET /api/v1/rollouts with the token made on the account page answered %v, want 200 before and 401 after its revocation", tokenAnswers)
	}
	for _, want := range []string{"pharmacy lead", "inventory.asset_updated"} {
		if !strings.Contains(assetText, want) {
			t.Errorf("asset page after the edit lacks %q: %q", want, assetText)
		}
	}
	if !strings.Contains(rolloutText, "pending_approval") || !strings.Contains(rolloutText, "pilot") {
		t.Errorf("rollout page after submitting: %q", rolloutText)
	}

	// Alan approves it with his own account.
	alanCode, _ := totp.GenerateCode(alanSecret, time.Now())
	err = runSteps(t, bctx,
		chromedp.Navigate(base+"/approvals"),
		login("alan", alanCode),
		chromedp.WaitVisible("#rollout-1", chromedp.ByID),
		shot("approvals.png"),
		chromedp.SendKeys("#rollout-1 .remark", "pilot evidence reviewed; go", chromedp.ByQuery),
		loads{chromedp.Click("#rollout-1 button.approve", chromedp.ByQuery)},
		chromedp.WaitVisible("#none", chromedp.ByID),
		chromedp.Navigate(base+"/rollouts/1"),
		chromedp.WaitVisible("#state", chromedp.ByID),
		chromedp.Text("#state", &afterText, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("browser, as alan: %v\nlog:\n%s", err, tail(logs.String(), 3000))
	}
	if afterText != "approved" {
		t.Errorf("rollout state on its page after the approval = %q, want approved", afterText)
	}
	got := admin.call("GET", "/api/v1/assets/"+assetID, nil, 200)
	if got["owner"] != "pharmacy lead" || got["criticality"] != "high" || got["ephi"] != "yes" {
		t.Errorf("asset after the browser edit = %v", got)
	}
	ro := admin.call("GET", "/api/v1/rollouts/1", nil, 200)
	if fmt.Sprint(ro["state"]) != "approved" || fmt.Sprint(ro["requested_by"]) != "rita" {
		t.Errorf("rollout = state %v requested by %v, want approved, rita", ro["state"], ro["requested_by"])
	}
	out := map[string][]byte{}
	for name, b := range shots {
		out[name] = *b
	}
	saveShots(t, out)
}

// runSteps runs actions one by one, so that a failure names the step it stopped at. A
// step whose node went away under it (the page was replaced between finding the node and
// acting on it) is tried once more.
func runSteps(t *testing.T, ctx context.Context, actions ...chromedp.Action) error {
	t.Helper()
	for i, a := range actions {
		err := chromedp.Run(ctx, a)
		if err != nil && strings.Contains(err.Error(), "Could not find node with given id") && ctx.Err() == nil {
			err = chromedp.Run(ctx, a)
		}
		if err != nil {
			var url string
			chromedp.Run(ctx, chromedp.Location(&url))
			return fmt.Errorf("step %d (%T) at %s: %w", i, a, url, err)
		}
	}
	return nil
}

// observePrinter puts a label printer into the inventory as the discovery would find
// it; it returns the device's ID.
func observePrinter(t *testing.T, sys *appliance.System) string {
	t.Helper()
	addr := netip.MustParseAddr("192.0.2.40")
	ctx := context.Background()
	if err := sys.Inventory().Observe(ctx, []netscan.Observation{{Source: netscan.SourceSNMP, Addr: addr,
		Facts: []netscan.Fact{{Key: netscan.KeyHostname, Value: "label-printer-1"}, {Key: netscan.KeySNMPSerial, Value: "ZT410-0001"}}}}); err != nil {
		t.Fatal(err)
	}
	asset, ok, err := sys.Inventory().ByAddr(ctx, addr)
	if err != nil || !ok {
		t.Fatalf("device not in the inventory: %v %v", ok, err)
	}
	return asset.ID
}

// newRelease makes release 1 of the demo repository's hello.txt on the releases page.
func newRelease(base, name string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(base + "/releases"),
		chromedp.WaitVisible("#new-release", chromedp.ByID),
		chromedp.SendKeys("#release-name", name, chromedp.ByID),
		chromedp.SendKeys("#release-repo", "demo", chromedp.ByID),
		chromedp.SendKeys("#release-targets", "hello.txt", chromedp.ByID),
		chromedp.SetValue("#release-severity", "high", chromedp.ByID),
		loads{chromedp.Submit("#new-release", chromedp.ByID)},
		chromedp.WaitVisible(`#releases a[href="/rollouts?release=1"]`, chromedp.ByQuery),
	}
}

// fillRollout fills the new-rollout form (not sent: the caller submits #new-rollout).
func fillRollout(base, risk, evidence, rollback string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(base + "/rollouts"),
		chromedp.WaitVisible("#new-rollout", chromedp.ByID),
		chromedp.SendKeys("#rollout-risk", risk, chromedp.ByID),
		chromedp.SendKeys("#rollout-evidence", evidence, chromedp.ByID),
		chromedp.SendKeys("#rollout-rollback", rollback, chromedp.ByID),
	}
}

// bearerStatus is the status GET /api/v1/rollouts answers with an API token.
func bearerStatus(t *testing.T, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/rollouts", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET /api/v1/rollouts with a token: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
