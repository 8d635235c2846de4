package rollout

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones are checked by name; the appliance image may have no zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

// Section is the rollout section of patchgate.yaml: it configures staged distribution: the serving gate, the engine's pace, the SLA
// by severity, pre-staging, and the rings and windows seeded into an empty store (after
// that, rings and windows are managed through the admin API).
type Section struct {
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
	Tick conf.Duration `yaml:"tick"`
	// PollInterval is what agents are told to poll at.
	PollInterval conf.Duration `yaml:"poll_interval"`
	// Recheck is the Retry-After when no opening is known (a paused rollout, a ring
	// waiting for the one before it).
	Recheck conf.Duration `yaml:"recheck"`
	// DownloadTimeout: a download older than this stops counting against a stage's
	// concurrency limit.
	DownloadTimeout conf.Duration `yaml:"download_timeout"`
	// Approvals a rollout needs, and EmergencyApprovals an emergency needs (at least 2);
	// never the requester's.
	Approvals          int `yaml:"approvals"`
	EmergencyApprovals int `yaml:"emergency_approvals"`
	// ApprovalPolicy is two_person (never the requester) or self_with_review (the
	// requester may approve their own rollout with a written justification; another
	// account countersigns it within ReviewDays, EmergencyReviewDays for an emergency).
	ApprovalPolicy      string `yaml:"approval_policy"`
	ReviewDays          int    `yaml:"review_days"`
	EmergencyReviewDays int    `yaml:"emergency_review_days"`
	// MaxAttempts per device and release; failed attempts are retried after
	// RetryBackoff, doubling up to RetryBackoffMax.
	MaxAttempts     int             `yaml:"max_attempts"`
	RetryBackoff    conf.Duration   `yaml:"retry_backoff"`
	RetryBackoffMax conf.Duration   `yaml:"retry_backoff_max"`
	SLA             SLASection      `yaml:"sla"`
	Prefetch        PrefetchSection `yaml:"prefetch"`
	// Rings and Windows are created on first start, when the store has no rings.
	Rings   []SeedRing   `yaml:"rings"`
	Windows []SeedWindow `yaml:"windows"`
	// AgentTLS is the agents' HTTPS listener with client certificates (agenttls.go).
	AgentTLS AgentTLSSection `yaml:"agent_tls"`
}

// SLASection is the time a device has to get a release, by severity. A known-exploited
// release is due by the sooner of its KEV due date and the critical SLA.
type SLASection struct {
	Critical conf.Duration `yaml:"critical"`
	High     conf.Duration `yaml:"high"`
	Medium   conf.Duration `yaml:"medium"`
	Low      conf.Duration `yaml:"low"`
}

// PrefetchSection says when scheduled rollouts' targets are pre-staged into the cache:
// in the off-peak hours (a cron expression in the site's zone and a duration), or
// anyway once the first window opens within Lead.
type PrefetchSection struct {
	OffPeak         string        `yaml:"off_peak"`
	OffPeakDuration conf.Duration `yaml:"off_peak_duration"`
	Lead            conf.Duration `yaml:"lead"`
}

// SeedRing is a ring seeded on first start: its selector's keys (tags, device_types,
// segments, assets) sit beside name and order.
type SeedRing struct {
	Name     string `yaml:"name"`
	Order    int    `yaml:"order"`
	Selector `yaml:",inline"`
}

// SeedWindow is a maintenance window seeded on first start, in the site's zone.
type SeedWindow struct {
	Name     string        `yaml:"name"`
	Cron     string        `yaml:"cron"`
	Duration conf.Duration `yaml:"duration"`
	Ring     string        `yaml:"ring"`
	Segment  string        `yaml:"segment"`
}

func rolloutCronOK(expr string) bool {
	if strings.Contains(expr, "TZ=") {
		return false
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return false
	}
	_, ok := s.(*cron.SpecSchedule)
	return ok
}

// Location returns the site's zone (UTC if Zone is not valid; Validate reports it).
func (r Section) Location() *time.Location {
	if loc, err := time.LoadLocation(r.Zone); err == nil && r.Zone != "Local" {
		return loc
	}
	return time.UTC
}

// Validate checks the rollout section and its references to segments.
func (r Section) Validate(key string, segs *segment.Table, ps *conf.Problems) {
	if _, err := time.LoadLocation(r.Zone); err != nil || r.Zone == "" || r.Zone == "Local" {
		ps.Addf(key+".zone", "must be an IANA time zone such as America/New_York or UTC, got %q", r.Zone)
	}
	if r.Gate != "enforce" && r.Gate != "open" {
		ps.Addf(key+".gate", "must be enforce or open, got %q", r.Gate)
	}
	between := func(k string, d conf.Duration, lo, hi time.Duration) {
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
	if !slices.Contains(ApprovalPolicies, ApprovalPolicy(r.ApprovalPolicy)) {
		ps.Addf(key+".approval_policy", "must be two_person or self_with_review, got %q", r.ApprovalPolicy)
	}
	if r.ReviewDays < 1 || r.ReviewDays > 90 {
		ps.Addf(key+".review_days", "must be 1-90, got %d", r.ReviewDays)
	}
	if r.EmergencyReviewDays < 1 || r.ReviewDays >= 1 && r.EmergencyReviewDays > r.ReviewDays {
		ps.Addf(key+".emergency_review_days", "must be at least 1 and at most review_days (%d), got %d", r.ReviewDays, r.EmergencyReviewDays)
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > 20 {
		ps.Addf(key+".max_attempts", "must be 1-20, got %d", r.MaxAttempts)
	}
	for _, s := range []struct {
		name string
		d    conf.Duration
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
	r.AgentTLS.validate(key+".agent_tls", ps)

	names := map[string]bool{}
	for i, rg := range r.Rings {
		k := conf.Index(key+".rings", i)
		if !ringName.MatchString(rg.Name) {
			ps.Addf(k+".name", "must be lower-case letters, digits, - or _ (max 32), got %q", rg.Name)
		} else if names[rg.Name] {
			ps.Addf(k+".name", "duplicate ring name %q", rg.Name)
		}
		names[rg.Name] = true
		if rg.Order < 0 || rg.Order > 1000 {
			ps.Addf(k+".order", "must be 0-1000, got %d", rg.Order)
		}
		for j, s := range rg.Segments {
			if _, ok := segs.Named(s); !ok {
				ps.Addf(conf.Index(k+".segments", j), "no segment named %q in segments", s)
			}
		}
	}
	if r.DefaultRing != "" && !names[r.DefaultRing] {
		ps.Addf(key+".default_ring", "must name one of the rings (%s) or be empty, got %q", strings.Join(ringNames(names), ", "), r.DefaultRing)
	}
	for i, w := range r.Windows {
		k := conf.Index(key+".windows", i)
		if strings.TrimSpace(w.Name) == "" {
			ps.Addf(k+".name", "must not be empty")
		}
		if !rolloutCronOK(w.Cron) {
			ps.Addf(k+".cron", "must be a 5-field cron expression (minute hour day month weekday), got %q", w.Cron)
		}
		between(conf.Index("windows", i)+".duration", w.Duration, time.Minute, 7*24*time.Hour)
		if w.Ring != "" && !names[w.Ring] {
			ps.Addf(k+".ring", "no ring named %q in rollout.rings", w.Ring)
		}
		if w.Segment != "" {
			if _, ok := segs.Named(w.Segment); !ok {
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

// ringName is what a ring may be called: what a segment may (appliance/segment).
var ringName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// DefaultSection is the rollout section of a config that leaves it out: three rings
// (pilot, core, critical) and a nightly window to seed an empty store with.
func DefaultSection() Section {
	return Section{Zone: "UTC", Gate: "enforce", DefaultRing: "core", Tick: conf.Duration(30 * time.Second),
		PollInterval: conf.Duration(5 * time.Minute), Recheck: conf.Duration(15 * time.Minute), DownloadTimeout: conf.Duration(2 * time.Hour),
		Approvals: 1, EmergencyApprovals: 2, ApprovalPolicy: string(TwoPerson), ReviewDays: 7, EmergencyReviewDays: 2, MaxAttempts: 3, RetryBackoff: conf.Duration(10 * time.Minute), RetryBackoffMax: conf.Duration(6 * time.Hour),
		SLA: SLASection{Critical: conf.Duration(72 * time.Hour), High: conf.Duration(7 * 24 * time.Hour), Medium: conf.Duration(30 * 24 * time.Hour),
			Low: conf.Duration(90 * 24 * time.Hour)},
		Prefetch: PrefetchSection{OffPeak: "0 1 * * *", OffPeakDuration: conf.Duration(4 * time.Hour), Lead: conf.Duration(2 * time.Hour)},
		AgentTLS: AgentTLSSection{CertValidity: conf.Duration(DefaultClientCertValidity)},
		Rings: []SeedRing{{Name: "pilot", Order: 0, Selector: Selector{Tags: []string{"pilot"}}}, {Name: "core", Order: 1},
			{Name: "critical", Order: 2, Selector: Selector{Tags: []string{"critical"}}}},
		Windows: []SeedWindow{{Name: "nightly", Cron: "0 22 * * *", Duration: conf.Duration(6 * time.Hour)}}}
}

// Config is the engine's configuration for section r; segmentOf names the segment of an
// address (the segment table's NameOf).
func (r Section) Config(segmentOf func(netip.Addr) string) Config {
	cfg := Config{
		Zone:                  r.Location(),
		Policy:                Policy{Critical: r.SLA.Critical.D(), High: r.SLA.High.D(), Medium: r.SLA.Medium.D(), Low: r.SLA.Low.D()},
		Approvals:             r.Approvals,
		EmergencyApprovals:    r.EmergencyApprovals,
		ApprovalPolicy:        ApprovalPolicy(r.ApprovalPolicy),
		ReviewWithin:          time.Duration(r.ReviewDays) * 24 * time.Hour,
		EmergencyReviewWithin: time.Duration(r.EmergencyReviewDays) * 24 * time.Hour,
		MaxAttempts:           r.MaxAttempts,
		RetryBase:             r.RetryBackoff.D(),
		RetryMax:              r.RetryBackoffMax.D(),
		Tick:                  r.Tick.D(),
		PollInterval:          r.PollInterval.D(),
		Recheck:               r.Recheck.D(),
		DownloadTimeout:       r.DownloadTimeout.D(),
		PrefetchLead:          r.Prefetch.Lead.D(),
		DefaultRing:           r.DefaultRing,
		Segment:               segmentOf,
	}
	if r.Prefetch.OffPeak != "" {
		cfg.OffPeak = &Window{Name: "off-peak", Cron: r.Prefetch.OffPeak, Duration: Duration(r.Prefetch.OffPeakDuration.D()), Zone: r.Zone}
	}
	for _, rg := range r.Rings {
		cfg.SeedRings = append(cfg.SeedRings, Ring{Name: rg.Name, Order: rg.Order, Selector: rg.Selector})
	}
	for _, w := range r.Windows {
		cfg.SeedWindows = append(cfg.SeedWindows, Window{Name: w.Name, Cron: w.Cron, Duration: Duration(w.Duration.D()),
			Zone: r.Zone, Ring: w.Ring, Segment: w.Segment})
	}
	return cfg
}
