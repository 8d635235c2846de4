package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWantsJSON(t *testing.T) {
	tests := []struct {
		name, accept string
		want         bool
	}{
		{"none", "", false},
		{"json", "application/json", true},
		{"browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"json preferred", "text/html;q=0.5, application/json", true},
		{"html preferred", "application/json;q=0.2, text/html", false},
		{"garbage", ";;;,=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", tt.accept)
			if got := WantsJSON(r); got != tt.want {
				t.Errorf("WantsJSON(%q) = %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}

type fixedStatus Status

func (f fixedStatus) Status(context.Context) Status { return Status(f) }

// A panel whose data does not fit its template is reported inside the page, and the
// rest of the page still renders.
func TestPanelErrorIsContained(t *testing.T) {
	st := Status{
		Build: Build{Version: "v1"},
		Now:   time.Unix(0, 0),
		Panels: []Panel{
			{ID: "generic", Title: "Raw", Data: map[string]int{"objects": 3}},
			{ID: "nosuchtemplate", Title: "Fallback", Data: []string{"x"}},
		},
	}
	p, err := NewPages(fixedStatus(st), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d", rec.Code)
	}
	for _, want := range []string{"&#34;objects&#34;: 3", "Fallback", "v1"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A template error is a clean 500, not half a page.
func TestRenderErrorIs500(t *testing.T) {
	p, err := NewPages(fixedStatus{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Render(rec, "no-such-page.html", nil)
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "<html") {
		t.Errorf("Render(missing) = %d %q, want a clean 500", rec.Code, rec.Body.String())
	}
}

func TestStaticAssetServed(t *testing.T) {
	p, _ := NewPages(fixedStatus{}, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	p.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/static/style.css", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "--accent") {
		t.Errorf("GET /static/style.css = %d", rec.Code)
	}
}

// TestRel: times and deadlines read as people say them, through the one template func rel.
func TestRel(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"zero", time.Time{}, "never"},
		{"same instant", now, "now"},
		{"under a second ahead", now.Add(400 * time.Millisecond), "now"},
		{"seconds ago", now.Add(-42 * time.Second), "42 s ago"},
		{"minutes ahead", now.Add(5 * time.Minute), "in 5 min"},
		{"hours ago", now.Add(-3*time.Hour - 20*time.Minute), "3 h ago"},
		{"a day and a half ahead", now.Add(36 * time.Hour), "in 36 h"},
		{"a week ahead", now.Add(7 * 24 * time.Hour), "in 7 days"},
		{"ten days ago", now.Add(-10 * 24 * time.Hour), "10 days ago"},
		{"three months ahead", now.Add(92 * 24 * time.Hour), "in 3 months"},
		{"five years ahead", now.AddDate(5, 0, 1), "in 5 years"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rel(now, tt.t); got != tt.want {
				t.Errorf("Rel(now, now%+v) = %q, want %q", tt.t.Sub(now), got, tt.want)
			}
		})
	}
}

// TestStatusPageSaysWhenItStarted: the status page shows its start as "3 h ago".
func TestStatusPageSaysWhenItStarted(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	p, err := NewPages(fixedStatus{Now: now, Started: now.Add(-3 * time.Hour)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Render(rec, "status.html", Status{Now: now, Started: now.Add(-3 * time.Hour)})
	if body := rec.Body.String(); !strings.Contains(body, "started 3 h ago") {
		t.Errorf("status page lacks \"started 3 h ago\":\n%s", body)
	}
}
