package rollout

import (
	"strings"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWindowAt(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	at := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, ny) }
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	win := func(cron string, d time.Duration, zone string) Window {
		return Window{Name: "w", Cron: cron, Duration: Duration(d), Zone: zone}
	}
	// opened is an opening in progress, next one still to come, from start to end (UTC).
	opened := func(start, end string) Opening { return Opening{Open: true, Start: utc(start), End: utc(end)} }
	next := func(start, end string) Opening { return Opening{Start: utc(start), End: utc(end)} }
	nightly := Window{Name: "nightly", Cron: "0 22 * * *", Duration: Duration(4 * time.Hour), Zone: "America/New_York"}
	tests := []struct {
		name string
		w    Window
		now  time.Time
		want Opening
	}{
		{"a minute before opening", nightly, at(2026, 6, 10, 21, 59),
			Opening{Start: at(2026, 6, 10, 22, 0), End: at(2026, 6, 11, 2, 0)}},
		{"at the opening instant", nightly, at(2026, 6, 10, 22, 0),
			Opening{Open: true, Start: at(2026, 6, 10, 22, 0), End: at(2026, 6, 11, 2, 0)}},
		{"past midnight, still open", nightly, at(2026, 6, 11, 1, 59),
			Opening{Open: true, Start: at(2026, 6, 10, 22, 0), End: at(2026, 6, 11, 2, 0)}},
		{"at the closing instant it is closed", nightly, at(2026, 6, 11, 2, 0),
			Opening{Start: at(2026, 6, 11, 22, 0), End: at(2026, 6, 12, 2, 0)}},
		// DST starts in New York on 2026-03-08 at 02:00 EST (07:00Z): clocks jump to 03:00.
		{"spring forward: the 01:00+4h night is 3h long and closes at 05:00 on the clock",
			win("0 1 * * *", 4*time.Hour, "America/New_York"), utc("2026-03-08T07:30:00Z"), opened("2026-03-08T06:00:00Z", "2026-03-08T09:00:00Z")},
		{"spring forward: an opening at 02:30 (which does not exist) opens at 03:30 EDT, not skipped",
			win("30 2 * * *", time.Hour, "America/New_York"), utc("2026-03-08T05:00:00Z"), next("2026-03-08T07:30:00Z", "2026-03-08T08:30:00Z")},
		{"spring forward: the day before, 02:30 EST as usual",
			win("30 2 * * *", time.Hour, "America/New_York"), utc("2026-03-07T05:00:00Z"), next("2026-03-07T07:30:00Z", "2026-03-07T08:30:00Z")},
		// DST ends on 2026-11-01 at 02:00 EDT (06:00Z): clocks go back to 01:00.
		{"fall back: the 22:00+8h night is 9h long and closes at 06:00 EST",
			win("0 22 * * *", 8*time.Hour, "America/New_York"), utc("2026-11-01T10:30:00Z"), opened("2026-11-01T02:00:00Z", "2026-11-01T11:00:00Z")}, // now: 05:30 EST
		{"fall back: 01:30 happens twice but opens once, at the first, and closes at 02:00 EST on the clock",
			win("30 1 * * *", 30*time.Minute, "America/New_York"), utc("2026-11-01T05:00:00Z"), next("2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z")},
		{"fall back: still open through the repeated hour",
			win("30 1 * * *", 30*time.Minute, "America/New_York"), utc("2026-11-01T06:40:00Z"), opened("2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z")}, // now: 01:40 EST
		{"fall back: the day after, 01:30 EST as usual",
			win("30 1 * * *", 30*time.Minute, "America/New_York"), utc("2026-11-01T07:00:00Z"), next("2026-11-02T06:30:00Z", "2026-11-02T07:00:00Z")},
		{"weekly on Saturdays",
			win("0 2 * * sat", 3*time.Hour, "UTC"), utc("2026-06-10T12:00:00Z"), next("2026-06-13T02:00:00Z", "2026-06-13T05:00:00Z")}, // now: a Wednesday
		{"before From: the first opening is on From",
			Window{Name: "w", Cron: "0 22 * * *", Duration: Duration(time.Hour), Zone: "UTC", From: "2026-07-01"}, utc("2026-06-10T22:30:00Z"), next("2026-07-01T22:00:00Z", "2026-07-01T23:00:00Z")},
		{"after Until: no more openings",
			Window{Name: "w", Cron: "0 22 * * *", Duration: Duration(time.Hour), Zone: "UTC", Until: "2026-06-09"}, utc("2026-06-10T12:00:00Z"), Opening{}},
		{"Until's day itself still opens",
			Window{Name: "w", Cron: "0 22 * * *", Duration: Duration(time.Hour), Zone: "UTC", Until: "2026-06-10"}, utc("2026-06-10T12:00:00Z"), next("2026-06-10T22:00:00Z", "2026-06-10T23:00:00Z")},
		{"overlapping openings chain into one",
			win("0 1,2 * * *", 90*time.Minute, "UTC"), utc("2026-06-10T01:15:00Z"), opened("2026-06-10T01:00:00Z", "2026-06-10T03:30:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.w.Compile()
			if err != nil {
				t.Fatal(err)
			}
			got := s.At(tt.now)
			if got.Open != tt.want.Open || !got.Start.Equal(tt.want.Start) || !got.End.Equal(tt.want.End) {
				t.Errorf("At(%s) = %s, want %s", tt.now.UTC().Format(time.RFC3339), fmtOpening(got), fmtOpening(tt.want))
			}
		})
	}
}

func fmtOpening(o Opening) string {
	return openWord(o.Open) + " " + o.Start.UTC().Format(time.RFC3339) + " - " + o.End.UTC().Format(time.RFC3339)
}

func openWord(b bool) string {
	if b {
		return "open"
	}
	return "closed"
}

func TestWindowCompileErrors(t *testing.T) {
	base := Window{Name: "w", Cron: "0 22 * * *", Duration: Duration(time.Hour), Zone: "UTC"}
	tests := []struct {
		name   string
		change func(*Window)
		want   string
	}{
		{"bad cron", func(w *Window) { w.Cron = "0 25 * * *" }, "cron:"},
		{"six fields", func(w *Window) { w.Cron = "0 0 22 * * *" }, "cron:"},
		{"every is not a calendar", func(w *Window) { w.Cron = "@every 1h" }, "@every"},
		{"zone in the expression", func(w *Window) { w.Cron = "CRON_TZ=UTC 0 22 * * *" }, "zone field"},
		{"unknown zone", func(w *Window) { w.Zone = "Mars/Olympus" }, "unknown time zone"},
		{"local zone", func(w *Window) { w.Zone = "Local" }, "IANA"},
		{"zero duration", func(w *Window) { w.Duration = 0 }, "duration"},
		{"too long", func(w *Window) { w.Duration = Duration(8 * 24 * time.Hour) }, "duration"},
		{"bad from", func(w *Window) { w.From = "31/03/2026" }, "from:"},
		{"until before from", func(w *Window) { w.From, w.Until = "2026-03-10", "2026-03-01" }, "before from"},
		{"bad ring", func(w *Window) { w.Ring = "Pilot Ring" }, "ring:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := base
			tt.change(&w)
			_, err := w.Compile()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := base.Compile(); err != nil {
		t.Fatalf("Compile(good) = %v", err)
	}
}

func TestCombine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	tests := []struct {
		name string
		ops  []Opening
		want Opening
	}{
		{"none", nil, Opening{}},
		{"earliest next", []Opening{{Start: h(5), End: h(6)}, {Start: h(3), End: h(4)}, {}}, Opening{Start: h(3), End: h(4)}},
		{"open wins over next", []Opening{{Start: h(1), End: h(2)}, {Open: true, Start: h(-1), End: h(3)}}, Opening{Open: true, Start: h(-1), End: h(3)}},
		{"two open: latest end", []Opening{{Open: true, Start: h(-1), End: h(3)}, {Open: true, Start: h(-2), End: h(5)}}, Opening{Open: true, Start: h(-2), End: h(5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := combine(tt.ops); got != tt.want {
				t.Errorf("combine = %s, want %s", fmtOpening(got), fmtOpening(tt.want))
			}
		})
	}
}
