package appliance

import (
	"context"
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
// account ("solo", holding admin and deployer: users may hold several roles, an API
// token one of them) sets up its ring and maintenance window, requests a release's
// rollout and approves it with a justification; the review is on the reviews page, and
// after its 7 days (fake clock) it is overdue on the compliance page. The admin role
// alone cannot manage rings or windows. Under two_person the same self-approval is
// refused.
func TestOneAccountShipsUnderSelfWithReview(t *testing.T) {
	for _, policy := range []string{"self_with_review", "two_person"} {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Rollout.ApprovalPolicy = policy
			clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			sys := newSystem(t, cfg, Options{Clock: clk})
			ctx := context.Background()
			solo := &auth.Principal{User: "solo", Roles: []auth.Role{auth.Admin, auth.Deployer}, Method: "password+totp"}
			if err := sys.auth.CreateUser(ctx, nil, solo.User, testPassword, solo.Roles); err != nil {
				t.Fatal(err)
			}
			tokenAs := func(role auth.Role) string {
				tok, _, err := sys.auth.CreateToken(ctx, solo, "solo-"+string(role), role, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return "Bearer " + tok
			}
			adminTok, deployerTok := tokenAs(auth.Admin), tokenAs(auth.Deployer)
			token := adminTok
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
			// The ring and the window: rollout.deploy, which the admin role does not grant.
			ring := map[string]any{"order": 5, "selector": map[string]any{"tags": []string{"printers"}}}
			if code := call("PUT", "/api/v1/rings/printers", ring, nil); code != http.StatusForbidden {
				t.Errorf("the admin role alone putting a ring = %d, want 403", code)
			}
			token = deployerTok
			if code := call("PUT", "/api/v1/rings/printers", ring, nil); code != http.StatusOK {
				t.Fatalf("solo as deployer putting a ring = %d", code)
			}
			if code := call("POST", "/api/v1/windows", map[string]any{"name": "printers-sunday", "cron": "0 6 * * 0", "duration": "2h",
				"zone": "UTC", "ring": "printers"}, nil); code != http.StatusOK {
				t.Fatalf("solo as deployer adding a window = %d", code)
			}
			token = adminTok
			var rel, ro struct {
				ID int64 `json:"id"`
			}
			if code := call("POST", "/api/v1/releases", map[string]any{"name": "label printer fw 4.2", "repo": "demo",
				"targets": []string{"hello.txt"}, "severity": "high"}, &rel); code != http.StatusOK {
				t.Fatalf("admin creating a release = %d", code)
			}
			if code := call("POST", "/api/v1/rollouts", map[string]any{"name": "printers", "release_id": rel.ID, "risk": "printers reboot",
				"test_evidence": "printed labels on the spare", "rollback_plan": "fw 4.1 from the cache",
				"stages": []map[string]any{{"ring": "printers", "success_percent": 100, "error_percent": 50, "min_results": 1}}}, &ro); code != http.StatusOK {
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
