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
