package appliance

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/web"
)

type panelStatus []web.Panel

func (p panelStatus) Status(context.Context) web.Status {
	return web.Status{Now: time.Unix(0, 0), Panels: p}
}

// TestAdvisoryPanel draws the feeds panel for each state a feed can be in.
func TestAdvisoryPanel(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	next := at.Add(6 * time.Hour)
	tests := []struct {
		name string
		st   advisory.Status
		want []string
	}{
		{"no feeds", advisory.Status{}, []string{"No advisory feed is configured"}},
		{"never fetched", advisory.Status{Feeds: []advisory.FeedStatus{{Name: "kev", Kind: "kev", Result: "never"}}},
			[]string{"<td>kev</td>", "never", "none"}},
		{"ok with pending documents, unscored advisories and the next run", advisory.Status{Feeds: []advisory.FeedStatus{{Name: "zebra", Kind: "csaf", Result: "ok",
			LastSuccess: &at, Documents: 12, Pending: 3, NextRun: &next, ScoreErrors: []string{`advisory CVE-1 (document D): cvss: invalid: vector "x"`},
			LastError: "get x: status 503", LastErrorAt: &at}}},
			[]string{"<td>zebra</td>", "12", "3 documents for the next run", "1 unscored", "status 503", "2026-12-05 18:00"}},
		{"refused", advisory.Status{Feeds: []advisory.FeedStatus{{Name: "osv", Kind: "osv", Result: "refused", Reason: "malformed",
			LastSuccess: &at, LastError: "not an OSV query answer", LastErrorAt: &at}}},
			[]string{`<span class="tag bad">malformed</span>`, "not an OSV query answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := web.NewPages(panelStatus{advisoryPanelOf(tt.st)}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			p.Register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			body := rec.Body.String()
			if rec.Code != http.StatusOK || strings.Contains(body, "could not be drawn") {
				t.Fatalf("GET / = %d; panel not drawn:\n%s", rec.Code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("panel lacks %q", w)
				}
			}
		})
	}
}

func advisoryPanelOf(st advisory.Status) web.Panel {
	return panel{"advisory", "Advisory feeds", func(context.Context) any { return st }}.Panel(context.Background())
}
