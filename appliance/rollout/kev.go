package rollout

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/patchgate/patchgate/appliance/advisory"
)

// KEV is a CISA Known Exploited Vulnerabilities catalog
// (https://www.cisa.gov/known-exploited-vulnerabilities-catalog, JSON feed), as far as
// Patchgate uses it.
type KEV struct {
	Version  string
	Released time.Time
	// Due maps a CVE id to the instant its remediation is due: the start of the day
	// after the catalog's dueDate, in the site's zone (zero when the entry has none).
	Due map[string]time.Time
}

// MaxKEVSize bounds the catalog file read (today's is about 1.5 MB).
const MaxKEVSize = advisory.MaxKEVSize

// ParseKEV reads a KEV catalog in CISA's JSON format (advisory.ParseKEV, the intake's
// parser), at most MaxKEVSize bytes. Due dates are taken as whole days in loc. A
// malformed file is an ErrInvalid naming the entry; nothing is partly applied.
func ParseKEV(r io.Reader, loc *time.Location) (*KEV, error) {
	c, err := advisory.ParseKEV(r, MaxKEVSize)
	if errors.Is(err, advisory.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	} else if err != nil {
		return nil, err
	}
	return KEVFrom(c, loc), nil
}

// KEVFrom is the part of an advisory KEV catalog the engine applies to releases: each
// CVE's due instant in loc.
func KEVFrom(c *advisory.KEV, loc *time.Location) *KEV {
	k := &KEV{Version: c.Version, Released: c.Released, Due: make(map[string]time.Time, len(c.Entries))}
	for id, e := range c.Entries {
		k.Due[id] = e.DueAt(loc, KEVDayStart)
	}
	return k
}

// KEVDayStart is the start of a civil day in loc by the engine's wall-clock rules (a
// day starting in a DST gap starts when the gap ends).
func KEVDayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	return wallTime(y, m, d, 0, 0, 0, loc)
}

// Apply marks r known-exploited if the catalog lists any of its CVEs, with the earliest
// of their due dates. It reports whether r changed.
func (k *KEV) Apply(r *Release) bool {
	var due time.Time
	found := false
	for _, c := range r.CVEs {
		d, ok := k.Due[c]
		if !ok {
			continue
		}
		found = true
		if !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	if !found {
		return false
	}
	changed := !r.KnownExploited || !r.KEVDue.Equal(due)
	r.KnownExploited, r.KEVDue = true, due
	return changed
}
