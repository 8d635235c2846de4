package cache

import (
	"fmt"
	"slices"
	"time"
)

// ShapePeriod is one entry of the shaper's time-of-day schedule: on Days (every day
// when empty), from From to To after local midnight in the schedule's zone, the caps
// are Percent of their configured rates. To before From spans midnight: "22:00-06:00"
// on Friday runs from Friday 22:00 to Saturday 06:00.
type ShapePeriod struct {
	Days     []time.Weekday
	From, To time.Duration // since local midnight, 0 to 24h
	Percent  int           // 1 to 100
}

// validate reports what is wrong with p, if anything.
func (p ShapePeriod) validate() error {
	switch {
	case p.From < 0 || p.From >= 24*time.Hour:
		return fmt.Errorf("from %s is not a time of day", p.From)
	case p.To < 0 || p.To > 24*time.Hour:
		return fmt.Errorf("to %s is not a time of day", p.To)
	case p.From == p.To:
		return fmt.Errorf("from and to are both %s", p.From)
	case p.Percent < 1 || p.Percent > 100:
		return fmt.Errorf("percent %d is not 1-100", p.Percent)
	}
	return nil
}

func (p ShapePeriod) onDay(d time.Weekday) bool {
	return len(p.Days) == 0 || slices.Contains(p.Days, d)
}

// Covers reports whether t, read on the wall clock of t's own location, falls in p.
func (p ShapePeriod) Covers(t time.Time) bool { return p.covers(t) }

// covers reports whether local wall time t (already in the schedule's zone) falls in p.
func (p ShapePeriod) covers(t time.Time) bool {
	tod := sinceMidnight(t)
	if p.From < p.To {
		return p.onDay(t.Weekday()) && tod >= p.From && tod < p.To
	}
	// Spans midnight: the evening part belongs to today, the morning part to yesterday.
	return p.onDay(t.Weekday()) && tod >= p.From || p.onDay((t.Weekday()+6)%7) && tod < p.To
}

// sinceMidnight is the wall-clock time of day of t. It reads the clock face, so on a
// day with a DST change 03:30 is 3h30m even if fewer or more hours have passed.
func sinceMidnight(t time.Time) time.Duration {
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

// shapeSchedule turns a time into the percent of every cap that applies then, and the
// time at which that may next change.
type shapeSchedule struct {
	periods []ShapePeriod
	def     int // percent outside every period
	loc     *time.Location
}

// at returns the percent in force at t (the first covering period wins, else the
// default) and when it next changes (if it never does: a day later, to read it again).
func (s shapeSchedule) at(t time.Time) (percent int, until time.Time) {
	percent = s.percentAt(t)
	// Period edges on the days around t, in order; the first where the percent
	// changes is the turn. A week ahead holds every edge there is.
	local := t.In(s.loc)
	y, mo, d := local.Date()
	var edges []time.Time
	for day := -1; day <= 8; day++ {
		midnight := time.Date(y, mo, d+day, 0, 0, 0, 0, s.loc)
		for _, p := range s.periods {
			for _, edge := range []time.Duration{p.From, p.To} {
				if e := wallAdd(midnight, edge); e.After(t) {
					edges = append(edges, e)
				}
			}
		}
	}
	slices.SortFunc(edges, time.Time.Compare)
	for _, e := range edges {
		if s.percentAt(e) != percent {
			return percent, e
		}
	}
	return percent, t.Add(24 * time.Hour)
}

func (s shapeSchedule) percentAt(t time.Time) int {
	local := t.In(s.loc)
	for _, p := range s.periods {
		if p.covers(local) {
			return p.Percent
		}
	}
	return s.def
}

// wallAdd returns the instant whose wall clock reads midnight's date plus tod, in
// midnight's zone (so 08:00 stays 08:00 across a DST change; a wall time skipped by
// the change is normalised by time.Date).
func wallAdd(midnight time.Time, tod time.Duration) time.Time {
	y, mo, d := midnight.Date()
	return time.Date(y, mo, d, 0, 0, 0, int(tod), midnight.Location())
}
