package config

import (
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones are checked by name; the appliance image may have no zoneinfo

	"github.com/robfig/cron/v3"
)

// Rollout configures staged distribution: the serving gate, the engine's pace, the SLA
// by severity, pre-staging, and the rings and windows seeded into an empty store (after
// that, rings and windows are managed through the admin API).
type Rollout struct {
	// Zone is the site's IANA time zone: seeded windows, the off-peak hours and KEV due
	// dates are read in it.
	Zone string `yaml:"zone"`
	// Gate is "enforce" (devices get a target only when a rollout releases it to their
	// ring, in their window) or "open" (every verified target to anyone: demos only).
	Gate string `yaml:"gate"`
	// DefaultRing takes the devices no ring's selector matches ("" leaves them in no
	// ring: they get nothing).
	DefaultRing string `yaml:"default_ring"`
	// Tick is how often running rollouts are evaluated.
	Tick Duration `yaml:"tick"`
	// PollInterval is what agents are told to poll at.
	PollInterval Duration `yaml:"poll_interval"`
	// Recheck is the Retry-After when no opening is known (a paused rollout, a ring
	// waiting for the one before it).
	Recheck Duration `yaml:"recheck"`
	// DownloadTimeout: a download older than this stops counting against a stage's
	// concurrency limit.
	DownloadTimeout Duration `yaml:"download_timeout"`
	// Approvals a rollout needs, and EmergencyApprovals an emergency needs (at least 2);
	// never the requester's.
	Approvals          int `yaml:"approvals"`
	EmergencyApprovals int `yaml:"emergency_approvals"`
	// MaxAttempts per device and release; failed attempts are retried after
	// RetryBackoff, doubling up to RetryBackoffMax.
	MaxAttempts     int             `yaml:"max_attempts"`
	RetryBackoff    Duration        `yaml:"retry_backoff"`
	RetryBackoffMax Duration        `yaml:"retry_backoff_max"`
	SLA             RolloutSLA      `yaml:"sla"`
	Prefetch        RolloutPrefetch `yaml:"prefetch"`
	// Rings and Windows are created on first start, when the store has no rings.
	Rings   []RolloutRing   `yaml:"rings"`
	Windows []RolloutWindow `yaml:"windows"`
}

// RolloutSLA is the time a device has to get a release, by severity. A known-exploited
// release is due by the sooner of its KEV due date and the critical SLA.
type RolloutSLA struct {
	Critical Duration `yaml:"critical"`
	High     Duration `yaml:"high"`
	Medium   Duration `yaml:"medium"`
	Low      Duration `yaml:"low"`
}

// RolloutPrefetch says when scheduled rollouts' targets are pre-staged into the cache:
// in the off-peak hours (a cron expression in the site's zone and a duration), or
// anyway once the first window opens within Lead.
type RolloutPrefetch struct {
	OffPeak         string   `yaml:"off_peak"`
	OffPeakDuration Duration `yaml:"off_peak_duration"`
	Lead            Duration `yaml:"lead"`
}

// RolloutRing is a ring seeded on first start.
type RolloutRing struct {
	Name        string   `yaml:"name"`
	Order       int      `yaml:"order"`
	Tags        []string `yaml:"tags"`
	DeviceTypes []string `yaml:"device_types"`
	Segments    []string `yaml:"segments"`
	Assets      []string `yaml:"assets"`
}

// RolloutWindow is a maintenance window seeded on first start, in the site's zone.
type RolloutWindow struct {
	Name     string   `yaml:"name"`
	Cron     string   `yaml:"cron"`
	Duration Duration `yaml:"duration"`
	Ring     string   `yaml:"ring"`
	Segment  string   `yaml:"segment"`
}

var rolloutCron = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func rolloutCronOK(expr string) bool {
	if strings.Contains(expr, "TZ=") {
		return false
	}
	s, err := rolloutCron.Parse(expr)
	if err != nil {
		return false
	}
	_, ok := s.(*cron.SpecSchedule)
	return ok
}

// Location returns the site's zone (UTC if Zone is not valid; Validate reports it).
func (r Rollout) Location() *time.Location {
	if loc, err := time.LoadLocation(r.Zone); err == nil && r.Zone != "Local" {
		return loc
	}
	return time.UTC
}

// Validate checks the rollout section and its references to segments.
func (r Rollout) Validate(key string, c *Config, ps *Problems) {
	if _, err := time.LoadLocation(r.Zone); err != nil || r.Zone == "" || r.Zone == "Local" {
		ps.Addf(key+".zone", "must be an IANA time zone such as America/New_York or UTC, got %q", r.Zone)
	}
	if r.Gate != "enforce" && r.Gate != "open" {
		ps.Addf(key+".gate", "must be enforce or open, got %q", r.Gate)
	}
	between := func(k string, d Duration, lo, hi time.Duration) {
		if d.D() < lo || d.D() > hi {
			ps.Addf(key+"."+k, "must be between %s and %s, got %s", lo, hi, d.D())
		}
	}
	between("tick", r.Tick, time.Second, time.Hour)
	between("poll_interval", r.PollInterval, 10*time.Second, 24*time.Hour)
	between("recheck", r.Recheck, 10*time.Second, 24*time.Hour)
	between("download_timeout", r.DownloadTimeout, time.Minute, 7*24*time.Hour)
	between("retry_backoff", r.RetryBackoff, time.Second, 7*24*time.Hour)
	between("retry_backoff_max", r.RetryBackoffMax, r.RetryBackoff.D(), 30*24*time.Hour)
	if r.Approvals < 1 || r.Approvals > 5 {
		ps.Addf(key+".approvals", "must be 1-5, got %d", r.Approvals)
	}
	if r.EmergencyApprovals < max(2, r.Approvals) || r.EmergencyApprovals > 5 {
		ps.Addf(key+".emergency_approvals", "must be at least 2 and at least approvals (%d), at most 5, got %d", r.Approvals, r.EmergencyApprovals)
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > 20 {
		ps.Addf(key+".max_attempts", "must be 1-20, got %d", r.MaxAttempts)
	}
	for _, s := range []struct {
		name string
		d    Duration
	}{{"critical", r.SLA.Critical}, {"high", r.SLA.High}, {"medium", r.SLA.Medium}, {"low", r.SLA.Low}} {
		between("sla."+s.name, s.d, time.Hour, 366*24*time.Hour)
	}
	if r.Prefetch.OffPeak != "" {
		if !rolloutCronOK(r.Prefetch.OffPeak) {
			ps.Addf(key+".prefetch.off_peak", "must be a 5-field cron expression (minute hour day month weekday) or empty, got %q", r.Prefetch.OffPeak)
		}
		between("prefetch.off_peak_duration", r.Prefetch.OffPeakDuration, time.Minute, 24*time.Hour)
	}
	between("prefetch.lead", r.Prefetch.Lead, 0, 7*24*time.Hour)

	names := map[string]bool{}
	for i, rg := range r.Rings {
		k := key + ".rings[" + itoa(i) + "]"
		if !segmentName.MatchString(rg.Name) {
			ps.Addf(k+".name", "must be lower-case letters, digits, - or _ (max 32), got %q", rg.Name)
		} else if names[rg.Name] {
			ps.Addf(k+".name", "duplicate ring name %q", rg.Name)
		}
		names[rg.Name] = true
		if rg.Order < 0 || rg.Order > 1000 {
			ps.Addf(k+".order", "must be 0-1000, got %d", rg.Order)
		}
		for j, s := range rg.Segments {
			if _, ok := c.SegmentNamed(s); !ok {
				ps.Addf(k+".segments["+itoa(j)+"]", "no segment named %q in segments", s)
			}
		}
	}
	if r.DefaultRing != "" && !names[r.DefaultRing] {
		ps.Addf(key+".default_ring", "must name one of the rings (%s) or be empty, got %q", strings.Join(ringNames(names), ", "), r.DefaultRing)
	}
	for i, w := range r.Windows {
		k := key + ".windows[" + itoa(i) + "]"
		if strings.TrimSpace(w.Name) == "" {
			ps.Addf(k+".name", "must not be empty")
		}
		if !rolloutCronOK(w.Cron) {
			ps.Addf(k+".cron", "must be a 5-field cron expression (minute hour day month weekday), got %q", w.Cron)
		}
		between("windows["+itoa(i)+"].duration", w.Duration, time.Minute, 7*24*time.Hour)
		if w.Ring != "" && !names[w.Ring] {
			ps.Addf(k+".ring", "no ring named %q in rollout.rings", w.Ring)
		}
		if w.Segment != "" {
			if _, ok := c.SegmentNamed(w.Segment); !ok {
				ps.Addf(k+".segment", "no segment named %q in segments", w.Segment)
			}
		}
	}
}

func ringNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
