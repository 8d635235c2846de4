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
