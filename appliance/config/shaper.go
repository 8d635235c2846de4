package config

import (
	"fmt"
	"github.com/patchgate/patchgate/conf"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Bandwidth sets the shaper: how fast the appliance serves updates to endpoints (one
// budget for the whole site, one per segment, one per client, shared fairly between
// concurrent downloads) and how fast it fetches them from upstream. Every rate is the
// rate at 100%; the schedule scales all of them by time of day, in Zone.
type Bandwidth struct {
	// Zone is the IANA time zone the schedule is read in; "Local" is the appliance's.
	Zone string `yaml:"zone"`
	// Site caps everything served to endpoints, summed (0: no cap).
	Site Rate `yaml:"site"`
	// Client caps what one endpoint gets over all its downloads (0: no cap).
	Client Rate `yaml:"client"`
	// Upstream caps fetches from the upstream repositories, summed (0: no cap).
	Upstream Rate `yaml:"upstream"`
	// Segments caps what each listed segment gets, summed over its clients.
	Segments []BandwidthSegment `yaml:"segments"`
	// Schedule lists the periods when the caps are some percent of their rates; the
	// first period that covers the time wins.
	Schedule []BandwidthPeriod `yaml:"schedule"`
	// DefaultPercent applies outside every period.
	DefaultPercent int `yaml:"default_percent"`
}

// BandwidthSegment is one segment's cap.
type BandwidthSegment struct {
	Segment string `yaml:"segment"`
	Rate    Rate   `yaml:"rate"`
}

// BandwidthPeriod is a time-of-day period of the schedule. To earlier than From spans
// midnight (22:00 to 06:00); the days are those on which the period starts (empty:
// every day).
type BandwidthPeriod struct {
	Days    []string  `yaml:"days"` // mon tue wed thu fri sat sun
	From    TimeOfDay `yaml:"from"`
	To      TimeOfDay `yaml:"to"`
	Percent int       `yaml:"percent"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Weekdays returns the period's days; Validate has checked them.
func (p BandwidthPeriod) Weekdays() []time.Weekday {
	var ds []time.Weekday
	for _, d := range p.Days {
		ds = append(ds, weekdays[strings.ToLower(d)])
	}
	return ds
}

// Location returns the schedule's zone; Validate has checked it.
func (b Bandwidth) Location() *time.Location {
	loc, err := time.LoadLocation(b.Zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Validate checks the bandwidth section and its references to the segments of c.
func (b Bandwidth) Validate(key string, c *Config, ps *Problems) {
	if _, err := time.LoadLocation(b.Zone); err != nil || b.Zone == "" {
		ps.Addf(key+".zone", "must be an IANA time zone such as Europe/Berlin or Local, got %q", b.Zone)
	}
	if b.DefaultPercent < 1 || b.DefaultPercent > 100 {
		ps.Addf(key+".default_percent", "must be 1-100, got %d", b.DefaultPercent)
	}
	seen := map[string]bool{}
	for i, s := range b.Segments {
		k := key + ".segments[" + itoa(i) + "]"
		if _, ok := c.SegmentNamed(s.Segment); !ok {
			ps.Addf(k+".segment", "no segment named %q in segments", s.Segment)
		} else if seen[s.Segment] {
			ps.Addf(k+".segment", "segment %q listed twice", s.Segment)
		}
		seen[s.Segment] = true
		if s.Rate == 0 {
			ps.Addf(k+".rate", "must be a rate such as 20Mbit/s, got 0 (leave the segment out for no cap)")
		}
	}
	for i, p := range b.Schedule {
		k := key + ".schedule[" + itoa(i) + "]"
		for j, d := range p.Days {
			if _, ok := weekdays[strings.ToLower(d)]; !ok {
				ps.Addf(k+".days["+itoa(j)+"]", "must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d)
			}
		}
		if p.From == p.To {
			ps.Addf(k+".to", "must differ from from, got %s for both", p.To)
		}
		if p.From.D() >= 24*time.Hour {
			ps.Addf(k+".from", "must be before 24:00, got %s", p.From)
		}
		if p.Percent < 1 || p.Percent > 100 {
			ps.Addf(k+".percent", "must be 1-100, got %d", p.Percent)
		}
	}
}

// Rate is a rate in bytes per second, written with its unit: "20Mbit/s", "2.5MB/s",
// "512KiB/s", "0" (no cap). Decimal units (kB, MB, GB, kbit, Mbit, Gbit) count in
// thousands, binary ones (KiB, MiB, GiB) in 1024s.
type Rate int64

var rateUnits = []struct {
	suffix string
	mult   float64 // bytes per second per unit
}{
	{"Gbit/s", 1e9 / 8}, {"Mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8},
	{"GiB/s", 1 << 30}, {"MiB/s", 1 << 20}, {"KiB/s", 1 << 10},
	{"GB/s", 1e9}, {"MB/s", 1e6}, {"kB/s", 1e3}, {"B/s", 1},
}

// ParseRate parses a rate such as "20Mbit/s" or "2MB/s".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*u.mult > 1<<50 {
			break
		}
		return Rate(math.Round(v * u.mult)), nil
	}
	return 0, fmt.Errorf("want a rate like 20Mbit/s, 2MB/s or 512KiB/s")
}

// UnmarshalYAML parses rates.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return conf.TypeError(n, "want a rate like 20Mbit/s, 2MB/s or 512KiB/s, got %q", n.Value)
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate back in bytes per second.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(r), 10) + "B/s"
}

// TimeOfDay is a wall-clock time "HH:MM", from 00:00 to 24:00.
type TimeOfDay time.Duration

// D returns the time since midnight.
func (t TimeOfDay) D() time.Duration { return time.Duration(t) }

func (t TimeOfDay) String() string {
	m := int(time.Duration(t) / time.Minute)
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}

// UnmarshalYAML parses "08:00".
func (t *TimeOfDay) UnmarshalYAML(n *yaml.Node) error {
	h, m, ok := strings.Cut(n.Value, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if n.Kind != yaml.ScalarNode || !ok || len(m) != 2 || err1 != nil || err2 != nil ||
		hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return conf.TypeError(n, "want a time of day like 08:00 or 24:00, got %q", n.Value)
	}
	*t = TimeOfDay(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	return nil
}

// MarshalYAML writes "HH:MM".
func (t TimeOfDay) MarshalYAML() (any, error) { return t.String(), nil }
