package cache

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/conf"
)

// Section is the cache section of patchgate.yaml: the update cache's store.
type Section struct {
	// Dir holds the objects (empty: STATE/cache).
	Dir string `yaml:"dir"`
	// Quota bounds the stored bytes; least recently used objects no rollout pins are
	// evicted past it (0: no quota).
	Quota conf.ByteSize `yaml:"quota"`
	// ScrubRate is how fast the scrubber re-hashes stored objects (0: never).
	ScrubRate conf.Rate `yaml:"scrub_rate"`
	// ScrubPause is the rest between two scrub passes.
	ScrubPause conf.Duration `yaml:"scrub_pause"`
	// StallTimeout gives up an upstream attempt that sent nothing for this long (the
	// next attempt resumes with a Range request).
	StallTimeout conf.Duration `yaml:"stall_timeout"`
	// DownloadDeadline bounds one upstream download, every attempt and back-off
	// included; devices waiting on it are answered 504 when it passes.
	DownloadDeadline conf.Duration `yaml:"download_deadline"`
	// MinRate is the slowest an attempt may receive, measured over MinRateWindow
	// (0: no minimum).
	MinRate conf.Rate `yaml:"min_rate"`
	// MinRateWindow is the sliding window MinRate is measured over.
	MinRateWindow conf.Duration `yaml:"min_rate_window"`
	// MaxAttempts is how many attempts in a row may end without new verified bytes
	// before the download is given up.
	MaxAttempts int `yaml:"max_attempts"`
}

// Validate checks the cache section.
func (c Section) Validate(key string, ps *conf.Problems) {
	if c.Quota < 0 {
		ps.Addf(key+".quota", "must not be negative, got %s", c.Quota)
	}
	if c.ScrubRate < 0 {
		ps.Addf(key+".scrub_rate", "must not be negative, got %s", c.ScrubRate)
	}
	if c.ScrubPause.D() < time.Minute {
		ps.Addf(key+".scrub_pause", "must be at least 1m, got %s", c.ScrubPause.D())
	}
	if c.StallTimeout.D() < time.Second {
		ps.Addf(key+".stall_timeout", "must be at least 1s, got %s", c.StallTimeout.D())
	}
	if c.DownloadDeadline.D() < time.Minute {
		ps.Addf(key+".download_deadline", "must be at least 1m, got %s", c.DownloadDeadline.D())
	}
	if c.MinRate < 0 {
		ps.Addf(key+".min_rate", "must not be negative, got %s", c.MinRate)
	}
	if c.MinRateWindow.D() < time.Second {
		ps.Addf(key+".min_rate_window", "must be at least 1s, got %s", c.MinRateWindow.D())
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		ps.Addf(key+".max_attempts", "must be 1-100, got %d", c.MaxAttempts)
	}
}

// DefaultSection is the cache section of a config that leaves it out.
func DefaultSection() Section {
	return Section{Quota: 20 << 30, ScrubRate: 4 << 20, ScrubPause: conf.Duration(time.Hour),
		StallTimeout: conf.Duration(60 * time.Second), DownloadDeadline: conf.Duration(time.Hour),
		MinRate: 1 << 10, MinRateWindow: conf.Duration(time.Minute), MaxAttempts: 5}
}

// Config is the store's configuration for section c; defaultDir is the directory used
// when c.Dir is empty (the wiring passes STATE/cache).
func (c Section) Config(defaultDir string) Config {
	dir := c.Dir
	if dir == "" {
		dir = defaultDir
	}
	return Config{
		Dir:                 dir,
		QuotaBytes:          int64(c.Quota),
		ScrubBytesPerSecond: int64(c.ScrubRate),
		ScrubPause:          c.ScrubPause.D(),
		StallTimeout:        c.StallTimeout.D(),
		DownloadDeadline:    c.DownloadDeadline.D(),
		MinRate:             cmp.Or(int64(c.MinRate), -1), // 0 in the file: no minimum
		MinRateWindow:       c.MinRateWindow.D(),
		MaxAttempts:         c.MaxAttempts,
	}
}

// Bandwidth is the bandwidth section of patchgate.yaml: it sets the shaper: how fast the appliance serves updates to endpoints (one
// budget for the whole site, one per segment, one per client, shared fairly between
// concurrent downloads) and how fast it fetches them from upstream. Every rate is the
// rate at 100%; the schedule scales all of them by time of day, in Zone.
type Bandwidth struct {
	// Zone is the IANA time zone the schedule is read in; "Local" is the appliance's.
	Zone string `yaml:"zone"`
	// Site caps everything served to endpoints, summed (0: no cap).
	Site conf.Rate `yaml:"site"`
	// Client caps what one endpoint gets over all its downloads (0: no cap).
	Client conf.Rate `yaml:"client"`
	// Upstream caps fetches from the upstream repositories, summed (0: no cap).
	Upstream conf.Rate `yaml:"upstream"`
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
	Segment string    `yaml:"segment"`
	Rate    conf.Rate `yaml:"rate"`
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

// Weekday parses a schedule's day name (mon tue wed thu fri sat sun, any case).
func Weekday(name string) (time.Weekday, bool) {
	d, ok := weekdays[strings.ToLower(name)]
	return d, ok
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

// Validate checks the bandwidth section and its references to segments, the names of
// the configured ones.
func (b Bandwidth) Validate(key string, segments []string, ps *conf.Problems) {
	if _, err := time.LoadLocation(b.Zone); err != nil || b.Zone == "" {
		ps.Addf(key+".zone", "must be an IANA time zone such as Europe/Berlin or Local, got %q", b.Zone)
	}
	if b.DefaultPercent < 1 || b.DefaultPercent > 100 {
		ps.Addf(key+".default_percent", "must be 1-100, got %d", b.DefaultPercent)
	}
	seen := map[string]bool{}
	for i, s := range b.Segments {
		k := conf.Index(key+".segments", i)
		if !slices.Contains(segments, s.Segment) {
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
		k := conf.Index(key+".schedule", i)
		for j, d := range p.Days {
			if _, ok := weekdays[strings.ToLower(d)]; !ok {
				ps.Addf(conf.Index(k+".days", j), "must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d)
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

// DefaultBandwidth is the bandwidth section of a config that leaves it out: no caps.
func DefaultBandwidth() Bandwidth { return Bandwidth{Zone: "Local", DefaultPercent: 100} }

// ShaperConfig is the shaper's configuration for section b. segments are the names of
// the configured segments: every one is counted, those listed in b.Segments are also
// capped.
func (b Bandwidth) ShaperConfig(segments []string) ShaperConfig {
	sc := ShaperConfig{
		Site:           int64(b.Site),
		Client:         int64(b.Client),
		Upstream:       int64(b.Upstream),
		DefaultPercent: b.DefaultPercent,
		Location:       b.Location(),
	}
	rates := map[string]int64{}
	for _, s := range b.Segments {
		rates[s.Segment] = int64(s.Rate)
	}
	for _, name := range segments {
		sc.Segments = append(sc.Segments, ShaperSegment{Name: name, Rate: rates[name]})
	}
	for _, p := range b.Schedule {
		sc.Schedule = append(sc.Schedule, ShapePeriod{Days: p.Weekdays(), From: p.From.D(), To: p.To.D(), Percent: p.Percent})
	}
	return sc
}
