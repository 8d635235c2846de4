// Package logring keeps the most recent log records in memory for the status page, while
// passing every record on to the real handler (JSON to stderr for journald). An
// attribute made with Private reaches only that handler: the ring, and so the status
// page, shows its key with the value withheld.
package logring

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Line is one remembered log record, flattened for display.
type Line struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs,omitempty"`
}

// Handler is a slog.Handler that remembers the last N records at or above its level and
// forwards everything to next. It is safe for concurrent use.
type Handler struct {
	next  slog.Handler
	ring  *ring
	attrs string // pre-formatted WithAttrs/WithGroup context
}

type ring struct {
	mu    sync.Mutex
	lines []Line
	next  int
	full  bool
}

// New returns a Handler keeping the last n records and forwarding to next.
func New(next slog.Handler, n int) *Handler {
	return &Handler{next: next, ring: &ring{lines: make([]Line, n)}}
}

// Enabled reports whether next handles the level.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle remembers r and forwards it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, a)
		return true
	})
	h.ring.add(Line{Time: r.Time, Level: r.Level.String(), Message: r.Message, Attrs: b.String()})
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, a)
	}
	return &Handler{next: h.next.WithAttrs(attrs), ring: h.ring, attrs: b.String()}
}

// WithGroup returns a handler that groups later attributes under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs}
}

// Lines returns the remembered records, oldest first.
func (h *Handler) Lines() []Line {
	r := h.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Line(nil), r.lines[:r.next]...)
	}
	return append(append([]Line(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}

func (r *ring) add(l Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) == 0 {
		return
	}
	r.lines[r.next] = l
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// Withheld is what the ring shows instead of a Private attribute's value.
const Withheld = "(withheld; see the journal)"

// Private marks an attribute for the console (the journal) only: the status page's
// recent log shows key=(withheld; see the journal). It is for what must reach the
// operator at the machine but nobody else: the one-time setup token, the effective
// config.
func Private(key string, value any) slog.Attr { return slog.Any(key, private{value}) }

type private struct{ v any }

// LogValue gives the real handler the value.
func (p private) LogValue() slog.Value { return slog.AnyValue(p.v) }

// appendAttr writes a as key=value to b, after a space if b is not empty, withholding
// Private values (also inside groups and behind other LogValuers).
func appendAttr(b *strings.Builder, a slog.Attr) {
	if a.Value.Kind() == slog.KindLogValuer {
		if _, ok := a.Value.LogValuer().(private); ok {
			a.Value = slog.StringValue(Withheld)
		} else {
			a.Value = a.Value.Resolve()
		}
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			if a.Key != "" {
				g.Key = a.Key + "." + g.Key
			}
			appendAttr(b, g)
		}
		return
	}
	if a.Equal(slog.Attr{}) {
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(a.String())
}
