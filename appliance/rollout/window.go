package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // windows name IANA zones; the appliance image may have no zoneinfo

	"github.com/robfig/cron/v3"
)

// Window is a recurring maintenance window: it opens at every time its cron expression
// names (in Zone) and stays open for Duration. It applies to the devices of Ring (all
// rings when empty) in Segment (all segments when empty). From and Until (YYYY-MM-DD in
// Zone, optional) bound the days on which an opening may start.
//
// Daylight saving time is handled on the wall clock, as java.time does: an opening at a
// time that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) opens
// as late as the jump (03:30), never skipped; one at a time that happens twice (01:30
// when clocks go back) opens at the first of them, once. The end is the start's wall
// clock time plus Duration (01:00 + 4h closes at 05:00 on the clock, whatever the
// night's length).
type Window struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Cron     string   `json:"cron"`
	Duration Duration `json:"duration"`
	Zone     string   `json:"zone"`
	From     string   `json:"from,omitempty"`
	Until    string   `json:"until,omitempty"`
	Ring     string   `json:"ring,omitempty"`
	Segment  string   `json:"segment,omitempty"`
}

// Opening describes a window's state at one instant. When Open, the instant is within
// [Start, End); otherwise Start is the next opening (zero if there is none) and End
// its end.
type Opening struct {
	Open  bool      `json:"open"`
	Start time.Time `json:"opens_at,omitzero"`
	End   time.Time `json:"closes_at,omitzero"`
}

// Applies reports whether w covers a device of ring in segment.
func (w *Window) Applies(ring, segment string) bool {
	return (w.Ring == "" || w.Ring == ring) && (w.Segment == "" || w.Segment == segment)
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

const (
	minWindow = time.Minute
	maxWindow = 7 * 24 * time.Hour
)

// Schedule is a Window compiled for computing openings. It is immutable and safe for
// concurrent use.
type Schedule struct {
	spec        *cron.SpecSchedule
	loc         *time.Location
	dur         time.Duration
	from, until time.Time // zero: unbounded; until is exclusive (the start of the day after Until)
}

// Compile checks w and returns its Schedule.
func (w *Window) Compile() (*Schedule, error) {
	var errs []string
	if strings.TrimSpace(w.Name) == "" || len(w.Name) > 100 {
		errs = append(errs, "name: must be 1-100 characters")
	}
	var loc *time.Location
	if w.Zone == "" || w.Zone == "Local" {
		errs = append(errs, fmt.Sprintf("zone: must be an IANA time zone such as America/New_York or UTC, got %q", w.Zone))
	} else if l, err := time.LoadLocation(w.Zone); err != nil {
		errs = append(errs, fmt.Sprintf("zone: unknown time zone %q", w.Zone))
	} else {
		loc = l
	}
	var spec *cron.SpecSchedule
	if strings.Contains(w.Cron, "TZ=") {
		errs = append(errs, "cron: give the zone in the zone field, not in the expression")
	} else if s, err := cronParser.Parse(w.Cron); err != nil {
		errs = append(errs, fmt.Sprintf("cron: %q: %v (want 5 fields: minute hour day-of-month month day-of-week, or @daily/@weekly/@monthly)", w.Cron, err))
	} else if ss, ok := s.(*cron.SpecSchedule); !ok {
		errs = append(errs, fmt.Sprintf("cron: %q: @every is not a calendar schedule", w.Cron))
	} else {
		spec = ss
	}
	d := w.Duration.D()
	if d < minWindow || d > maxWindow {
		errs = append(errs, fmt.Sprintf("duration: must be between %s and %s, got %s", minWindow, maxWindow, d))
	}
	if w.Ring != "" && !nameRE.MatchString(w.Ring) {
		errs = append(errs, fmt.Sprintf("ring: not a ring name: %q", w.Ring))
	}
	if w.Segment != "" && !nameRE.MatchString(w.Segment) {
		errs = append(errs, fmt.Sprintf("segment: not a segment name: %q", w.Segment))
	}
	s := &Schedule{spec: spec, loc: loc, dur: d}
	if loc != nil {
		var err error
		if s.from, err = parseDay(w.From, loc, 0); err != nil {
			errs = append(errs, "from: "+err.Error())
		}
		if s.until, err = parseDay(w.Until, loc, 1); err != nil {
			errs = append(errs, "until: "+err.Error())
		}
		if !s.from.IsZero() && !s.until.IsZero() && !s.from.Before(s.until) {
			errs = append(errs, fmt.Sprintf("until: %s is before from %s", w.Until, w.From))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: window: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return s, nil
}

// parseDay returns the start of day (plus addDays) of a YYYY-MM-DD date in loc; zero for
// an empty string.
func parseDay(s string, loc *time.Location, addDays int) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date like 2026-03-31, got %q", s)
	}
	return wallTime(d.Year(), d.Month(), d.Day()+addDays, 0, 0, 0, loc), nil
}

// wallTime is time.Date with DST gaps and overlaps resolved as java.time does: a wall
// time in a gap moves forward by the gap's length; one in an overlap is the earlier
// instant. (Go's time.Date leaves the choice unspecified.)
func wallTime(year int, month time.Month, day, hour, min, sec int, loc *time.Location) time.Time {
	want := time.Date(year, month, day, hour, min, sec, 0, time.UTC) // normalised wall fields
	t := time.Date(year, month, day, hour, min, sec, 0, loc)
	if sameWall(t, want) {
		// The earlier of two instants with this wall time, if there are two.
		for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
			if e := t.Add(-back); sameWall(e, want) {
				return e
			}
		}
		return t
	}
	// In a gap: read the wall time with the offset in force before the transition.
	_, before := t.Add(-12 * time.Hour).Zone()
	return want.Add(-time.Duration(before) * time.Second).In(loc)
}

func sameWall(t, wall time.Time) bool {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC).Equal(wall)
}

// end is the close of the opening that starts at start: its wall clock plus the
// duration.
func (s *Schedule) end(start time.Time) time.Time {
	l := start.In(s.loc)
	y, mo, d := l.Date()
	h, mi, sec := l.Clock()
	return wallTime(y, mo, d, h, mi, sec+int(s.dur/time.Second), s.loc)
}

// starts calls yield with every opening start strictly after after, in order, until
// yield returns false or five years have been searched.
func (s *Schedule) starts(after time.Time, yield func(time.Time) bool) {
	if s.spec == nil {
		return
	}
	sp := s.spec
	l := after.In(s.loc)
	if !s.from.IsZero() && s.from.After(after) {
		l = s.from.Add(-time.Nanosecond).In(s.loc)
	}
	y, mo, d := l.Date()
	day := time.Date(y, mo, d-1, 12, 0, 0, 0, time.UTC) // calendar arithmetic only
	var cands []time.Time
	for range 5*366 + 2 {
		dy, dm, dd := day.Date()
		wd := day.Weekday()
		day = day.AddDate(0, 0, 1)
		if sp.Month&(1<<uint(dm)) == 0 || !dayMatches(sp, dd, wd) {
			continue
		}
		cands = cands[:0]
		for h := range 24 {
			if sp.Hour&(1<<uint(h)) == 0 {
				continue
			}
			for m := range 60 {
				if sp.Minute&(1<<uint(m)) == 0 {
					continue
				}
				t := wallTime(dy, dm, dd, h, m, 0, s.loc)
				if t.After(after) && (s.from.IsZero() || !t.Before(s.from)) {
					cands = append(cands, t)
				}
			}
		}
		slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
		for i, t := range cands {
			if i > 0 && t.Equal(cands[i-1]) {
				continue
			}
			if !s.until.IsZero() && !t.Before(s.until) {
				return
			}
			if !yield(t) {
				return
			}
		}
		if !s.until.IsZero() && time.Date(dy, dm, dd, 0, 0, 0, 0, s.loc).After(s.until) {
			return
		}
	}
}

// dayMatches is cron's day rule: with either field a wildcard both must match,
// otherwise either may.
func dayMatches(sp *cron.SpecSchedule, dom int, dow time.Weekday) bool {
	const star = 1 << 63
	domOK := sp.Dom&(1<<uint(dom)) != 0
	dowOK := sp.Dow&(1<<uint(dow)) != 0
	if sp.Dom&star != 0 || sp.Dow&star != 0 {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// maxChain bounds the openings merged into one (a window every minute, open for a day, has 1440).
const maxChain = 1000

// At returns the window's state at t: open (with the current opening, overlapping
// openings merged) or closed (with the next opening).
func (s *Schedule) At(t time.Time) Opening {
	var op Opening
	n := 0
	// An opening containing t started after t - duration - the largest DST shift.
	s.starts(t.Add(-s.dur-3*time.Hour), func(st time.Time) bool {
		n++
		e := s.end(st)
		switch {
		case !op.Start.IsZero():
			// Chain openings that overlap or touch the one found.
			if st.After(op.End) {
				return false
			}
			if e.After(op.End) {
				op.End = e
			}
		case !st.After(t):
			if e.After(t) {
				op = Opening{Open: true, Start: st, End: e}
			}
		default: // the next opening after t
			op = Opening{Start: st, End: e}
		}
		return n < maxChain
	})
	return op
}

// combine merges the states of several windows at one instant: open if any is open
// (until the latest of their ends), else the earliest next opening.
func combine(ops []Opening) Opening {
	var out Opening
	for _, o := range ops {
		switch {
		case o.Open && !out.Open:
			out = o
		case o.Open:
			if o.Start.Before(out.Start) {
				out.Start = o.Start
			}
			if o.End.After(out.End) {
				out.End = o.End
			}
		case out.Open || o.Start.IsZero():
		case out.Start.IsZero() || o.Start.Before(out.Start):
			out = o
		}
	}
	return out
}

// Next returns up to n openings that start after after, in order (overlapping openings
// are not merged: this is the preview the windows page shows).
func (s *Schedule) Next(after time.Time, n int) []Opening {
	var out []Opening
	s.starts(after, func(st time.Time) bool {
		out = append(out, Opening{Start: st, End: s.end(st)})
		return len(out) < n
	})
	return out
}
