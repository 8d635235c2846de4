package appliance

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/netscan"
)

// The admin pages' forms, end to end through the guard: each posts an HTML form to the
// API route the page names, with the permission auth's table gives that route; the
// pages render under the script-free CSP.

// uiNow is the fake clock's time: Monday 2 March 2026, 12:00 UTC.
var uiNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// uiSystem runs the dev config on a fake clock with one token user per role and one
// device in the inventory; it returns the System, a client per role and the device's ID.
func uiSystem(t *testing.T) (*System, map[auth.Role]*formClient, string) {
	t.Helper()
	sys, _ := runLogged(t, testConfig(t), clock.NewFake(uiNow))
	clients := map[auth.Role]*formClient{}
	for _, role := range auth.Roles {
		clients[role] = &formClient{t: t, base: "http://" + sys.AdminAddr(), bearer: apiToken(t, sys, role)}
	}
	ctx := context.Background()
	addr := netip.MustParseAddr("192.0.2.40")
	if err := sys.Inventory().Observe(ctx, []netscan.Observation{{Source: netscan.SourceSNMP, Addr: addr,
		Facts: []netscan.Fact{{Key: netscan.KeyHostname, Value: "label-printer-1"}, {Key: netscan.KeySNMPSerial, Value: "ZT410-0001"}}}}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := sys.Inventory().ByAddr(ctx, addr)
	if err != nil || !ok {
		t.Fatalf("device not in the inventory: %v %v", ok, err)
	}
	return sys, clients, a.ID
}

// formClient sends what a browser's form sends (urlencoded, Accept: text/html), signed
// in with an API token, and does not follow redirects.
type formClient struct {
	t      *testing.T
	base   string
	bearer string
}

// send posts form to path (GET when form is nil); header is extra name, value pairs.
func (c *formClient) send(path string, form url.Values, header ...string) (int, http.Header, string) {
	c.t.Helper()
	method, body, ct := http.MethodGet, io.Reader(nil), ""
	if form != nil {
		method, body, ct = http.MethodPost, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req := httpapitest.NewRequest(c.t, method, c.base+path, body, append([]string{"Content-Type", ct, "Accept", "text/html", "Authorization", c.bearer}, header...)...)
	resp, raw := httpapitest.Do(c.t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, req)
	return resp.StatusCode, resp.Header, string(raw)
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// formCase is one request of a page test: who sends which form (nil: GET) where, the
// status wanted, and what the answer must say (the redirect's Location for a 303, else
// the body).
type formCase struct {
	name   string
	who    auth.Role
	path   string
	form   url.Values
	header []string
	want   int
	says   string
}

func runFormCases(t *testing.T, clients map[auth.Role]*formClient, cases []formCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := clients[tt.who].send(tt.path, tt.form, tt.header...)
			got := body
			if code == http.StatusSeeOther {
				got = h.Get("Location")
			}
			if code != tt.want || !strings.Contains(got, tt.says) {
				t.Fatalf("%s %s as %s = %d %.400s, want %d with %q", map[bool]string{true: "POST", false: "GET"}[tt.form != nil], tt.path, tt.who, code, got, tt.want, tt.says)
			}
			if tt.form == nil && code == http.StatusOK {
				if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
					t.Errorf("CSP = %q, want script-src 'none'", csp)
				}
				if strings.Contains(strings.ToLower(body), "<script") {
					t.Errorf("page has a script")
				}
			}
		})
	}
}

// crossSite is what a browser adds to a form another site makes it send.
var crossSite = []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}

func TestAssetPageForms(t *testing.T) {
	_, c, id := uiSystem(t)
	page := "/inventory/" + url.PathEscape(id)
	edit := "/api/v1/assets/" + url.PathEscape(id)
	attrs := vals("return", page, "owner", "pharmacy lead", "criticality", "high", "ephi", "yes", "tags", "front-desk labels", "eol_date", "2029-12-31")
	runFormCases(t, c, []formCase{
		{"page", auth.Viewer, page, nil, nil, 200, "label-printer-1"},
		{"missing device", auth.Viewer, "/inventory/no-such-device", nil, nil, 404, "no such asset"},
		{"edit refused to a requester", auth.Requester, edit, attrs, nil, 403, "inventory.write"},
		{"edit refused cross-site", auth.Deployer, edit, attrs, crossSite, 403, "cross-origin"},
		{"bad criticality names the field", auth.Deployer, edit, vals("criticality", "very"), nil, 400, "criticality"},
		{"bad form answered with a page, not JSON", auth.Deployer, edit, vals("criticality", "very"), nil, 400, `<p class="bad" id="error">invalid attributes: criticality`},
		{"edit of a missing device answered with a page", auth.Deployer, "/api/v1/assets/no-such-device", attrs, nil, 404, `id="error">no such asset`},
		{"edit", auth.Deployer, edit, attrs, nil, 303, page},
		{"page shows the edit", auth.Viewer, page, nil, nil, 200, "pharmacy lead"},
		{"history shows the edit", auth.Viewer, page, nil, nil, 200, "inventory.asset_updated"},
		{"exception refused to a viewer", auth.Viewer, "/api/v1/exceptions", vals("asset", id, "cve", "CVE-2026-0001"), nil, 403, "exception.request"},
		{"exception with a bad date names the field", auth.Requester, "/api/v1/exceptions", vals("asset", id, "cve", "CVE-2026-0001", "reason", "vendor", "compensating_controls", "vlan", "expires_at", "soon"), nil, 400, "expires_at"},
		{"exception", auth.Requester, "/api/v1/exceptions", vals("return", page, "asset", id, "cve", "CVE-2026-0001", "reason", "vendor has no fix yet",
			"compensating_controls", "printer VLAN has no internet", "expires_at", "2026-04-30"), nil, 303, page},
		{"exception listed", auth.Viewer, "/exceptions", nil, nil, 200, "CVE-2026-0001"},
	})
}

func TestSearchAndPaging(t *testing.T) {
	_, c, _ := uiSystem(t)
	runFormCases(t, c, []formCase{
		{"inventory search", auth.Viewer, "/inventory?q=label", nil, nil, 200, "label-printer-1"},
		{"inventory search misses", auth.Viewer, "/inventory?q=robot", nil, nil, 200, "No devices match"},
		{"inventory page size bounded", auth.Viewer, "/inventory?per_page=1000", nil, nil, 400, "per_page"},
		{"inventory bad page", auth.Viewer, "/inventory?page=x", nil, nil, 400, "page"},
		{"inventory paging", auth.Viewer, "/inventory?per_page=25", nil, nil, 200, "page 1 of 1"},
		{"audit refused to a viewer", auth.Viewer, "/audit", nil, nil, 403, "audit.read"},
		{"audit search", auth.Auditor, "/audit?q=appliance.start", nil, nil, 200, "appliance.start"},
		{"audit search misses", auth.Auditor, "/audit?q=nothing-like-this", nil, nil, 200, "No records"},
		{"audit page size bounded", auth.Auditor, "/audit?limit=501", nil, nil, 400, "limit"},
		{"audit bad before", auth.Auditor, "/audit?before=x", nil, nil, 400, "before"},
		{"audit older pages", auth.Auditor, "/audit?limit=1", nil, nil, 200, `id="older"`},
	})
}

func TestRolloutPagesForms(t *testing.T) {
	sys, c, _ := uiSystem(t)
	release := vals("return", "/releases", "name", "Label printer firmware 2.4", "repo", "demo", "targets", "hello.txt", "severity", "high")
	rollout := vals("return", "/rollouts", "release_id", "1", "risk", "low: printers only", "test_evidence", "pilot printed labels",
		"rollback_plan", "reflash 2.3", "stages.0.ring", "pilot", "stages.0.success_percent", "90", "stages.0.error_percent", "10",
		"stages.0.min_results", "1", "stages.0.soak", "2h", "stages.1.ring", "", "stages.1.success_percent", "")
	runFormCases(t, c, []formCase{
		// Rings and windows: deployers.
		{"ring refused to a requester", auth.Requester, "/api/v1/rings", vals("name", "pilot"), nil, 403, "rollout.deploy"},
		{"ring refused cross-site", auth.Deployer, "/api/v1/rings", vals("name", "pilot"), crossSite, 403, "cross-origin"},
		{"ring bad order names the field", auth.Deployer, "/api/v1/rings", vals("name", "pilot", "order", "first"), nil, 400, "order"},
		{"a form's error is a page", auth.Deployer, "/api/v1/rings", vals("name", "pilot", "order", "first"), nil, 400, `id="error"`},
		{"ring unknown field named", auth.Deployer, "/api/v1/rings", vals("name", "pilot", "colour", "red"), nil, 400, "colour"},
		{"ring", auth.Deployer, "/api/v1/rings", vals("return", "/rings", "name", "pilot", "order", "0", "selector.tags", "front-desk"), nil, 303, "/rings"},
		{"ring edit", auth.Deployer, "/api/v1/rings/pilot", vals("return", "/rings", "name", "pilot", "order", "1", "selector.tags", "front-desk labels"), nil, 303, "/rings"},
		{"ring spare", auth.Deployer, "/api/v1/rings", vals("name", "spare"), nil, 303, "/rollouts"},
		{"ring delete", auth.Deployer, "/api/v1/rings/spare/delete", vals("return", "/rings"), nil, 303, "/rings"},
		{"rings page", auth.Viewer, "/rings", nil, nil, 200, `id="ring-pilot"`},
		{"window bad cron names the field", auth.Deployer, "/api/v1/windows", vals("name", "nightly", "cron", "at night", "duration", "4h", "zone", "UTC"), nil, 400, "cron"},
		{"window bad duration names the field", auth.Deployer, "/api/v1/windows", vals("name", "nightly", "cron", "0 22 * * *", "duration", "long", "zone", "UTC"), nil, 400, "duration"},
		{"window refused to an approver", auth.Approver, "/api/v1/windows", vals("name", "nightly", "cron", "0 22 * * *", "duration", "4h"), nil, 403, "rollout.deploy"},
		{"window", auth.Deployer, "/api/v1/windows", vals("return", "/windows", "name", "nightly", "cron", "0 22 * * *", "duration", "4h", "zone", "UTC"), nil, 303, "/windows"},
		// The fake clock says Monday 12:00 UTC: the next openings are tonight's and tomorrow's.
		{"windows preview", auth.Viewer, "/windows", nil, nil, 200, "2026-03-02 22:00:00Z – 2026-03-03 02:00:00Z"},
		{"windows preview second", auth.Viewer, "/windows", nil, nil, 200, "2026-03-03 22:00:00Z"},
		{"window spare", auth.Deployer, "/api/v1/windows", vals("name", "spare", "cron", "0 1 * * 6", "duration", "1h", "zone", "Europe/Berlin"), nil, 303, "/rollouts"},
		{"window delete", auth.Deployer, "/api/v1/windows/2/delete", vals("return", "/windows"), nil, 303, "/windows"},
		// Releases and rollouts: requesters.
		{"release refused to a deployer", auth.Deployer, "/api/v1/releases", release, nil, 403, "rollout.request"},
		{"release bad severity names the field", auth.Requester, "/api/v1/releases", vals("name", "x", "repo", "demo", "targets", "hello.txt", "severity", "dire"), nil, 400, "severity"},
		{"release", auth.Requester, "/api/v1/releases", release, nil, 303, "/releases"},
		{"releases page", auth.Viewer, "/releases", nil, nil, 200, "Label printer firmware 2.4"},
		{"rollout bad threshold names the field", auth.Requester, "/api/v1/rollouts", vals("release_id", "1", "stages.0.ring", "pilot", "stages.0.success_percent", "most"), nil, 400, "stages.0.success_percent"},
		{"rollout out of range names the field", auth.Requester, "/api/v1/rollouts", vals("release_id", "1", "stages.0.ring", "pilot", "stages.0.success_percent", "120", "stages.0.error_percent", "10", "stages.0.min_results", "1"), nil, 400, "success_percent"},
		{"rollout refused to an approver", auth.Approver, "/api/v1/rollouts", rollout, nil, 403, "rollout.request"},
		{"rollout", auth.Requester, "/api/v1/rollouts", rollout, nil, 303, "/rollouts"},
		{"rollouts page", auth.Viewer, "/rollouts", nil, nil, 200, `href="/rollouts/1"`},
		{"rollouts page preselects the release", auth.Viewer, "/rollouts?release=1", nil, nil, 200, `value="1" selected`},
		{"rollouts page bad release", auth.Viewer, "/rollouts?release=one", nil, nil, 400, "release"},
		{"rollout page", auth.Viewer, "/rollouts/1", nil, nil, 200, "2h0m0s"},
		{"missing rollout", auth.Viewer, "/rollouts/99", nil, nil, 404, "not found"},
		{"submit refused to a deployer", auth.Deployer, "/api/v1/rollouts/1/submit", vals("return", "/rollouts/1"), nil, 403, "rollout.request"},
		{"submit", auth.Requester, "/api/v1/rollouts/1/submit", vals("return", "/rollouts/1"), nil, 303, "/rollouts/1"},
		// Approvals: the existing separation of duties.
		{"approve refused to a requester", auth.Requester, "/api/v1/approvals/1/approve", vals("remark", "mine"), nil, 403, "rollout.approve"},
		{"approve refused cross-site", auth.Approver, "/api/v1/approvals/1/approve", vals("remark", "ok"), crossSite, 403, "cross-origin"},
		{"approve", auth.Approver, "/api/v1/approvals/1/approve", vals("return", "/approvals", "remark", "pilot evidence reviewed"), nil, 303, "/approvals"},
		{"approved", auth.Viewer, "/rollouts/1", nil, nil, 200, `id="state">approved`},
		{"schedule bad time names the field", auth.Deployer, "/api/v1/rollouts/1/schedule", vals("start", "later"), nil, 400, "start"},
		{"pause refused to a requester", auth.Requester, "/api/v1/rollouts/1/pause", vals("reason", "x"), nil, 403, "rollout.deploy"},
	})
	r, err := sys.rollout.Rollout(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stages) != 1 || r.Stages[0].Ring != "pilot" || r.Stages[0].SuccessPercent != 90 || r.Stages[0].Soak.D() != 2*time.Hour || len(r.Approvals) != 1 {
		t.Errorf("rollout made from the form = %+v", r)
	}
}

func TestUsersForms(t *testing.T) {
	_, c, _ := uiSystem(t)
	runFormCases(t, c, []formCase{
		{"users page has role checkboxes", auth.Admin, "/users", nil, nil, 200, `type="checkbox" name="roles" value="approver"`},
		{"users page refused to a deployer", auth.Deployer, "/users", nil, nil, 403, "users.manage"},
		{"roles refused cross-site", auth.Admin, "/api/v1/users/token-viewer/roles", vals("roles", "auditor"), crossSite, 403, "cross-origin"},
		{"roles refused to an approver", auth.Approver, "/api/v1/users/token-viewer/roles", vals("roles", "auditor"), nil, 403, "users.manage"},
		{"no role ticked", auth.Admin, "/api/v1/users/token-viewer/roles", vals("return", "/users"), nil, 400, "role"},
		{"two roles ticked", auth.Admin, "/api/v1/users/token-viewer/roles", vals("return", "/users", "roles", "viewer", "roles", "auditor"), nil, 303, "/users"},
		{"both shown", auth.Admin, "/users", nil, nil, 200, `value="auditor" checked`},
	})
}

func TestNavigationReachesEveryPage(t *testing.T) {
	_, c, _ := uiSystem(t)
	_, _, body := c[auth.Admin].send("/account", nil)
	for _, page := range []string{"/", "/inventory", "/candidates", "/releases", "/rollouts", "/approvals", "/rings", "/windows",
		"/exceptions", "/compliance", "/audit", "/users", "/account"} {
		if !strings.Contains(body, `href="`+page+`"`) {
			t.Errorf("the navigation has no link to %s", page)
		}
	}
}
