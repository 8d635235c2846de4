package appliance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/clock"
)

// TestOneAccountShipsUnderSelfWithReview: under self_with_review a site whose only
// account is its admin requests a release's rollout and approves it with a
// justification; the review is on the reviews page, and after its 7 days (fake clock)
// it is overdue on the compliance page. Under two_person the same self-approval is
// refused.
func TestOneAccountShipsUnderSelfWithReview(t *testing.T) {
	for _, policy := range []string{"self_with_review", "two_person"} {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Rollout.ApprovalPolicy = policy
			clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			sys := newSystem(t, cfg, Options{Clock: clk})
			token := apiToken(t, sys, auth.Admin)
			call := func(method, path string, body any, out any) int {
				t.Helper()
				var rd *strings.Reader
				if body != nil {
					j, _ := json.Marshal(body)
					rd = strings.NewReader(string(j))
				} else {
					rd = strings.NewReader("")
				}
				req := httptest.NewRequest(method, path, rd)
				req.Header.Set("Authorization", token)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				rec := httptest.NewRecorder()
				sys.admin.srv.Handler.ServeHTTP(rec, req)
				if s, ok := out.(*string); ok {
					*s = rec.Body.String()
				} else if out != nil && rec.Code < 300 {
					if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
						t.Fatalf("%s %s: %v: %s", method, path, err, rec.Body)
					}
				}
				return rec.Code
			}
			var rel, ro struct {
				ID int64 `json:"id"`
			}
			if code := call("POST", "/api/v1/releases", map[string]any{"name": "label printer fw 4.2", "repo": "demo",
				"targets": []string{"hello.txt"}, "severity": "high"}, &rel); code != http.StatusOK {
				t.Fatalf("admin creating a release = %d", code)
			}
			if code := call("POST", "/api/v1/rollouts", map[string]any{"name": "printers", "release_id": rel.ID, "risk": "printers reboot",
				"test_evidence": "printed labels on the spare", "rollback_plan": "fw 4.1 from the cache",
				"stages": []map[string]any{{"ring": "core", "success_percent": 100, "error_percent": 50, "min_results": 1}}}, &ro); code != http.StatusOK {
				t.Fatalf("admin creating a rollout = %d", code)
			}
			id := strconv.FormatInt(ro.ID, 10)
			if code := call("POST", "/api/v1/rollouts/"+id+"/submit", map[string]any{}, nil); code != http.StatusOK {
				t.Fatalf("admin submitting = %d", code)
			}
			var body string
			code := call("POST", "/api/v1/approvals/"+id+"/self-approve", map[string]string{"justification": "one-person practice; the MSP reviews weekly"}, &body)
			if policy == "two_person" {
				if code != http.StatusForbidden {
					t.Errorf("self-approval under two_person = %d %s, want 403", code, body)
				}
				return
			}
			if code != http.StatusOK {
				t.Fatalf("self-approval = %d %s", code, body)
			}
			var page string
			if code := call("GET", "/reviews", nil, &page); code != http.StatusOK || !strings.Contains(page, "printers") {
				t.Errorf("GET /reviews = %d, lacks the review", code)
			}
			if code := call("GET", "/compliance", nil, &page); code != http.StatusOK || strings.Contains(page, `id="reviews-overdue"`) {
				t.Errorf("compliance before the deadline = %d, overdue shown", code)
			}
			clk.Advance(7*24*time.Hour + time.Minute)
			token = apiToken(t, sys, auth.Viewer) // the admin's token has expired; any reader sees the compliance page
			if code := call("GET", "/compliance", nil, &page); code != http.StatusOK || !strings.Contains(page, `id="reviews-overdue"`) || !strings.Contains(page, "self_with_review") {
				t.Errorf("compliance after 7 days = %d, lacks the overdue review:\n%s", code, page)
			}
		})
	}
}
