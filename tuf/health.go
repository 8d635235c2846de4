package tuf

import "time"

// Severity says how bad a [Problem] is.
type Severity string

// Severities of problems.
const (
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Problem is one health problem, as data for the status page and systemd.
type Problem struct {
	// Code is stable and machine-readable, e.g. "tuf-metadata-expired".
	Code     string
	Severity Severity
	// Text is one sentence for a person.
	Text string
}

// Clock is the time source of this package; appliance/clock satisfies it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
