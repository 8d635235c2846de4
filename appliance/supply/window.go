package supply

import (
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/conf"
)

// Window is a source's download window: the time of day its scheduled checks may
// download in, read in the bandwidth schedule's zone (bandwidth.zone). To earlier than
// From spans midnight (22:00 to 06:00); Days are those on which the window opens
// (empty: every day). A scheduled check that falls outside waits for the next opening;
// one still running when the window closes is stopped, and its partial download is
// resumed (Range) in the next window. A check asked for now (the API, the Sources
// page) runs at once, window or not.
type Window struct {
	Days []string        `yaml:"days"` // mon tue wed thu fri sat sun
	From cache.TimeOfDay `yaml:"from"`
	To   cache.TimeOfDay `yaml:"to"`
}

func (w *Window) validate(k string, ps *conf.Problems) {
	for j, d := range w.Days {
		if _, ok := cache.Weekday(d); !ok {
			ps.Addf(conf.Index(k+".days", j), "must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d)
		}
	}
	if w.From == w.To {
		ps.Addf(k+".to", "must differ from from, got %s for both", w.To)
	}
	if w.From.D() >= 24*time.Hour {
		ps.Addf(k+".from", "must be before 24:00, got %s", w.From)
	}
}

// schedule is a Window in its zone, the periodic.Window of its source's checks; the nil
// schedule is always open.
type schedule struct {
	p   cache.ShapePeriod
	loc *time.Location
}

func newSchedule(w *Window, loc *time.Location) *schedule {
	if w == nil {
		return nil
	}
	if loc == nil {
		loc = time.Local
	}
	p := cache.ShapePeriod{From: w.From.D(), To: w.To.D(), Percent: 100}
	for _, d := range w.Days {
		wd, _ := cache.Weekday(d) // validated
		p.Days = append(p.Days, wd)
	}
	return &schedule{p: p, loc: loc}
}

func (s *schedule) Open(t time.Time) bool { return s == nil || s.p.Covers(t.In(s.loc)) }

// edges are the wall times at tod since midnight, from the day before t to 8 days
// after, that come after t, in order (a week ahead holds every edge there is).
func (s *schedule) edges(t time.Time, tod time.Duration) []time.Time {
	local := t.In(s.loc)
	y, mo, d := local.Date()
	var out []time.Time
	for day := -1; day <= 8; day++ {
		if e := time.Date(y, mo, d+day, 0, 0, 0, int(tod), s.loc); !e.Before(t) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// Next is t when the window is open at t, else when it next opens.
func (s *schedule) Next(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	for _, e := range s.edges(t, s.p.From) {
		if s.Open(e) {
			return e
		}
	}
	return t.Add(24 * time.Hour) // unreachable for a valid window: look again a day later
}

// closes is when the window, open at t, next closes (zero: never, 00:00-24:00 daily).
func (s *schedule) closes(t time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, e := range s.edges(t, s.p.To) {
		if e.After(t) && !s.Open(e) {
			return e
		}
	}
	return time.Time{}
}

// String is "22:00-06:00" with the days, if any ("" for no window).
func (w *Window) String() string {
	if w == nil {
		return ""
	}
	s := w.From.String() + "-" + w.To.String()
	if len(w.Days) > 0 {
		s += " " + strings.Join(w.Days, ",")
	}
	return s
}
