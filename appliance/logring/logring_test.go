package logring

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestKeepsLastNAndForwards(t *testing.T) {
	var out bytes.Buffer
	h := New(slog.NewJSONHandler(&out, nil), 3)
	log := slog.New(h).With("svc", "web")
	for i := range 5 {
		log.Info(fmt.Sprintf("msg %d", i), "n", i)
	}
	lines := h.Lines()
	if len(lines) != 3 {
		t.Fatalf("Lines() has %d records, want 3", len(lines))
	}
	for i, l := range lines {
		if want := fmt.Sprintf("msg %d", i+2); l.Message != want {
			t.Errorf("Lines()[%d].Message = %q, want %q", i, l.Message, want)
		}
		if !strings.Contains(l.Attrs, "svc=web") || !strings.Contains(l.Attrs, fmt.Sprintf("n=%d", i+2)) {
			t.Errorf("Lines()[%d].Attrs = %q, want svc=web and n", i, l.Attrs)
		}
	}
	if got := strings.Count(out.String(), "\n"); got != 5 {
		t.Errorf("forwarded %d records, want 5", got)
	}
}

// TestPrivateReachesTheConsoleOnly: a Private attribute's value is forwarded to the
// console but never kept in the ring, also inside a group or a With.
func TestPrivateReachesTheConsoleOnly(t *testing.T) {
	tests := []struct {
		name string
		log  func(*slog.Logger)
	}{
		{"record", func(l *slog.Logger) { l.Warn("setup", Private("setup_token", "S3CRET"), "url", "/setup") }},
		{"group", func(l *slog.Logger) { l.Info("setup", slog.Group("first_run", Private("setup_token", "S3CRET"))) }},
		{"with", func(l *slog.Logger) { l.With(Private("setup_token", "S3CRET")).Info("setup") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := New(slog.NewJSONHandler(&out, nil), 10)
			tt.log(slog.New(h))
			if !strings.Contains(out.String(), "S3CRET") {
				t.Errorf("console lacks the value: %s", out.String())
			}
			lines := h.Lines()
			if len(lines) != 1 {
				t.Fatalf("ring has %d lines, want 1", len(lines))
			}
			if l := lines[0]; strings.Contains(l.Attrs, "S3CRET") || !strings.Contains(l.Attrs, "setup_token="+Withheld) {
				t.Errorf("ring line attrs = %q, want setup_token withheld", l.Attrs)
			}
		})
	}
}
