// Package health describes the problems a service can have as data: a code, a severity
// and a sentence for people. The status page lists them and systemd's STATUS= line
// carries the worst.
package health

import (
	"fmt"
	"slices"
)

// Severity orders problems; the zero value is Info.
type Severity int

// Severities, least to most serious.
const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	default:
		return "info"
	}
}

// MarshalText renders the severity as its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name back.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "info":
		*s = Info
	case "warning":
		*s = Warning
	case "error":
		*s = Error
	default:
		return fmt.Errorf("health: unknown severity %q", b)
	}
	return nil
}

// Problem is one declared health problem, e.g. {Code: "tuf-metadata-expired",
// Severity: Error, Text: "repository demo: timestamp expired at ..."}.
type Problem struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Text     string   `json:"text"`
}

// Worst returns the most serious problem of ps, and false if ps is empty.
func Worst(ps []Problem) (Problem, bool) {
	if len(ps) == 0 {
		return Problem{}, false
	}
	return slices.MaxFunc(ps, func(a, b Problem) int { return int(a.Severity) - int(b.Severity) }), true
}

// List is the problems problem finds among items (false for an item without one), worst
// first; problems of the same severity keep the order of their items. A service whose
// health is one problem per failing feed or source lists it with this.
func List[T any](items []T, problem func(T) (Problem, bool)) []Problem {
	var ps []Problem
	for _, it := range items {
		if p, ok := problem(it); ok {
			ps = append(ps, p)
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return int(b.Severity) - int(a.Severity) })
	return ps
}
