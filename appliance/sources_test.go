package appliance

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSourcesPage (issue 15): the server-rendered Sources page lists each source with
// its kind, last check and result, next check and staged candidates, without scripts;
// it is in the navigation; its "check now" form (rollout.request) redirects back and a
// check runs; a viewer may look but not check; an unknown source is 404; the API's
// check still answers 202 with JSON.
func TestSourcesPage(t *testing.T) {
	fx := newSupplyFixture(t)
	admin := "http://" + fx.sys.AdminAddr()
	code, page := fetch(t, "GET", admin+"/sources", nil, "Authorization", fx.tokens["vic"], "Accept", "text/html")
	if code != http.StatusOK {
		t.Fatalf("GET /sources as a viewer: %d %s", code, page)
	}
	for _, want := range []string{`id="source-vendor"`, "<td>url</td>", `<span class="tag ok">ok</span>`, "tool-1.2.bin",
		`action="/api/v1/sources/vendor/check"`, `<a href="/sources">Sources</a>`, `<a href="/candidates">Candidates</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the Sources page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, " on") && strings.Contains(page, "onclick") {
		t.Error("the Sources page carries script")
	}
	if !strings.Contains(page, "never") && !strings.Contains(page, "ago") && !strings.Contains(page, "(now)") { // web.Rel: "now" within a second of the check
		t.Error("the Sources page shows no time of the last check")
	}

	before := fx.svc.Sources()[0].Checks
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := func(who, name string) *http.Response {
		req, _ := http.NewRequest("POST", admin+"/api/v1/sources/"+name+"/check", strings.NewReader("return=%2Fsources"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", fx.tokens[who])
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := form("rita", "vendor"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sources" {
		t.Fatalf("check now as a requester: %d to %q, want 303 to /sources", resp.StatusCode, resp.Header.Get("Location"))
	}
	for deadline := time.Now().Add(20 * time.Second); fx.svc.Sources()[0].Checks <= before; time.Sleep(10 * time.Millisecond) { // the check runs in the service's goroutine
		if time.Now().After(deadline) {
			t.Fatal("no check ran after check now")
		}
	}
	if resp := form("vic", "vendor"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("check now as a viewer: %d, want 403", resp.StatusCode)
	}
	if resp := form("rita", "nosuch"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("check now of an unknown source: %d, want 404", resp.StatusCode)
	}
	if code, body := post(t, admin+"/api/v1/sources/vendor/check", fx.tokens["rita"], nil, nil); code != http.StatusAccepted || !strings.Contains(body, `"name": "vendor"`) {
		t.Errorf("API check: %d %s, want 202 with the source's status", code, body)
	}
	if code, body := post(t, admin+"/api/v1/sources/vendor/check", fx.tokens["rita"], map[string]string{"colour": "red"}, nil); code != http.StatusBadRequest {
		t.Errorf("API check with an unknown key: %d %s, want 400", code, body)
	}
}
