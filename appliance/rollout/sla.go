package rollout

import "time"

// Policy is the SLA by severity: how long after a release is published (or after a
// device became known, if later) the device must have it.
type Policy struct {
	Critical time.Duration
	High     time.Duration
	Medium   time.Duration
	Low      time.Duration
}

// DefaultPolicy is the sites' guidance: critical 72 h, high 7 days, medium 30 days,
// low 90 days.
func DefaultPolicy() Policy {
	const day = 24 * time.Hour
	return Policy{Critical: 3 * day, High: 7 * day, Medium: 30 * day, Low: 90 * day}
}

// For returns the SLA of severity s (Low's for an unknown severity).
func (p Policy) For(s Severity) time.Duration {
	switch s {
	case Critical:
		return p.Critical
	case High:
		return p.High
	case Medium:
		return p.Medium
	}
	return p.Low
}

// Deadline is when a device known since since must have release r: the later of the
// release's publication and since, plus the SLA of its severity. A known-exploited
// release is due at the sooner of its KEV due date and the critical SLA (and never
// later than its own severity's deadline).
func (p Policy) Deadline(r *Release, since time.Time) time.Time {
	base := r.Published
	if since.After(base) {
		base = since
	}
	d := base.Add(p.For(r.Severity))
	if r.KnownExploited {
		if c := base.Add(p.Critical); c.Before(d) {
			d = c
		}
		if !r.KEVDue.IsZero() && r.KEVDue.Before(d) {
			d = r.KEVDue
		}
	}
	return d
}
