// Package logring keeps the most recent log records in memory for the status page, while
// passing every record on to the real handler (JSON to stderr for journald).
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
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
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
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
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
