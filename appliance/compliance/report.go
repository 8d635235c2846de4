package compliance

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Item is one obligation: an asset that must get a release, with its deadline and
// outcome so far.
type Item struct {
	AssetID        string    `json:"asset_id,omitempty"`
	Asset          string    `json:"asset"`
	AssetType      string    `json:"asset_type"`
	Segment        string    `json:"segment"`
	Ring           string    `json:"ring"`
	Release        string    `json:"release"`
	ReleaseID      string    `json:"release_id,omitempty"`
	CVEs           []string  `json:"cves,omitempty"`
	Severity       string    `json:"severity"` // critical, high, medium, low
	KnownExploited bool      `json:"known_exploited"`
	Since          time.Time `json:"since"`    // when the obligation began
	Deadline       time.Time `json:"deadline"` // the SLA deadline
	PatchedAt      time.Time `json:"patched_at,omitzero"`
	Attempts       int       `json:"attempts"`
	Failures       int       `json:"failures"`
	// Excused is set by Build when an approved exception covers the unpatched item.
	Excused bool `json:"excused,omitempty"`
}

// Patched reports whether the item was patched by t.
func (it Item) Patched(t time.Time) bool { return !it.PatchedAt.IsZero() && !it.PatchedAt.After(t) }

// Approval is one rollout's approval: when it was submitted and decided.
type Approval struct {
	Rollout   string    `json:"rollout"`
	Submitted time.Time `json:"submitted"`
	Decided   time.Time `json:"decided"`
}

// Exception is an exception as the report shows it.
type Exception struct {
	ID          int64     `json:"id"`
	Scope       string    `json:"scope"` // asset X or ring Y
	Target      string    `json:"target"`
	State       string    `json:"state"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	ReviewDue   bool      `json:"review_due"`
}

// Source gives the obligations and approvals (the rollout engine and the inventory).
type Source interface {
	Items(ctx context.Context) ([]Item, error)
	Approvals(ctx context.Context) ([]Approval, error)
}

// Exceptions gives the open exceptions (the rollout engine).
type Exceptions interface {
	OpenExceptions(ctx context.Context) ([]Exception, error)
}

// Excuser says whether an approved, unexpired exception covers an item now (the rollout
// engine).
type Excuser interface {
	ExcusedItem(ctx context.Context, it Item) (bool, error)
}

// MFA gives the second-factor coverage of accounts that can change things (auth).
type MFA interface {
	MFACoverage(ctx context.Context) (needing, enrolled int, err error)
}

// Severities in report order.
var Severities = []string{"critical", "high", "medium", "low"}

// Coverage is patched of total.
type Coverage struct {
	Key     string  `json:"key"`
	Patched int     `json:"patched"`
	Total   int     `json:"total"`
	Percent float64 `json:"percent"`
}

// Durations summarises times to patch.
type Durations struct {
	Severity string    `json:"severity"`
	Count    int       `json:"count"`
	MedianH  float64   `json:"median_hours"`
	P90H     float64   `json:"p90_hours"`
	Hours    []float64 `json:"-"` // every sample, for the distribution chart
}

// Bucket is a labelled count.
type Bucket struct {
	Label string `json:"label"`
	Count int    `json:"count"`
}

// Rate is failures per attempts.
type Rate struct {
	Ring     string  `json:"ring"`
	Attempts int     `json:"attempts"`
	Failures int     `json:"failures"`
	Percent  float64 `json:"percent"`
}

// Point is one point of a trend.
type Point struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
}

// Report is the whole compliance picture at one time, for a period.
type Report struct {
	Now         time.Time   `json:"now"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Items       int         `json:"items"`
	BySeverity  []Coverage  `json:"coverage_by_severity"`
	ByRing      []Coverage  `json:"coverage_by_ring"`
	BySegment   []Coverage  `json:"coverage_by_segment"`
	ByType      []Coverage  `json:"coverage_by_type"`
	WithinSLA   Coverage    `json:"within_sla"`
	TimeToPatch []Durations `json:"time_to_patch"`
	OverdueAges []Bucket    `json:"overdue_by_age"`
	Overdue     []Item      `json:"overdue"`
	KEVOpen     int         `json:"kev_open"`
	KEVPastDue  int         `json:"kev_past_due"`
	KEVItems    []Item      `json:"kev_items"`
	Excused     []Item      `json:"excused"` // unpatched, past or before their deadline, covered by an exception
	FailedRate  []Rate      `json:"failed_update_rate"`
	Exceptions  []Exception `json:"open_exceptions"`
	ApprovalN   int         `json:"approvals"`
	ApprovalMed float64     `json:"approval_latency_median_hours"`
	ApprovalP90 float64     `json:"approval_latency_p90_hours"`
	MFANeeded   int         `json:"mfa_needed"`
	MFAEnrolled int         `json:"mfa_enrolled"`
	MFAPercent  float64     `json:"mfa_percent"`
	// The approval policy in force (two_person, self_with_review), the self-approvals
	// of the period or still waiting for a countersignature, and those overdue.
	ApprovalPolicy string   `json:"approval_policy,omitempty"`
	SelfApprovals  []Review `json:"self_approvals"`
	ReviewsOverdue []Review `json:"reviews_overdue"`
	// Trends.
	CoverageTrend []Point  `json:"coverage_12_months"`
	OverdueTrend  []Point  `json:"overdue_12_months"`
	Problems      []string `json:"problems,omitempty"`
	// Vulnerabilities: open findings by severity and age, and those closed in the
	// period with the release that closed them (nil without a findings source).
	Vulnerabilities *Vulnerabilities `json:"vulnerabilities,omitempty"`
}

// Builder computes reports. It is safe for concurrent use.
type Builder struct {
	Source     Source
	Exceptions Exceptions // may be nil
	MFA        MFA        // may be nil
	Excuser    Excuser    // may be nil: nothing is excused
	Reviews    Reviews    // may be nil: no approval policy or self-approvals shown
	Findings   Findings   // may be nil: no vulnerability findings in the report
}

// Build computes the report at now for the period [from, to) (approvals and patches in
// the period; coverage and overdue as of to, or now if to is later).
func (b *Builder) Build(ctx context.Context, now, from, to time.Time) (*Report, error) {
	if to.IsZero() || to.After(now) {
		to = now
	}
	r := &Report{Now: now, From: from, To: to}
	var items []Item
	var err error
	if b.Source != nil {
		if items, err = b.Source.Items(ctx); err != nil {
			return nil, fmt.Errorf("compliance: items: %w", err)
		}
	} else {
		r.Problems = append(r.Problems, "no rollout data source is connected")
	}
	at := to
	var live []Item
	for _, it := range items {
		if !it.Since.After(at) {
			live = append(live, it)
		}
	}
	r.Items = len(live)
	r.BySeverity = coverage(live, at, func(it Item) string { return it.Severity }, Severities)
	r.ByRing = coverage(live, at, func(it Item) string { return it.Ring }, nil)
	r.BySegment = coverage(live, at, func(it Item) string { return it.Segment }, nil)
	r.ByType = coverage(live, at, func(it Item) string { return it.AssetType }, nil)

	// Within SLA: of the items that are patched or due, those patched by their deadline.
	var due, ontime int
	for _, it := range live {
		if it.Patched(at) || at.After(it.Deadline) {
			due++
			if it.Patched(at) && !it.PatchedAt.After(it.Deadline) {
				ontime++
			}
		}
	}
	r.WithinSLA = Coverage{Key: "within SLA", Patched: ontime, Total: due, Percent: pct(ontime, due)}

	// Time to patch: the items patched in the period.
	for _, sev := range Severities {
		d := Durations{Severity: sev}
		for _, it := range live {
			if it.Severity == sev && it.Patched(at) && !it.PatchedAt.Before(from) {
				d.Hours = append(d.Hours, it.PatchedAt.Sub(it.Since).Hours())
			}
		}
		slices.Sort(d.Hours)
		d.Count, d.MedianH, d.P90H = len(d.Hours), quantile(d.Hours, 0.5), quantile(d.Hours, 0.9)
		r.TimeToPatch = append(r.TimeToPatch, d)
	}

	// Overdue by age; open known-exploited items.
	ages := []struct {
		label string
		max   time.Duration
	}{{"1-7 days", 7 * 24 * time.Hour}, {"8-30 days", 30 * 24 * time.Hour}, {"31-90 days", 90 * 24 * time.Hour}, {"over 90 days", math.MaxInt64}}
	r.OverdueAges = make([]Bucket, len(ages))
	for i, a := range ages {
		r.OverdueAges[i].Label = a.label
	}
	for i, it := range live {
		if it.Patched(at) {
			continue
		}
		if b.Excuser != nil {
			ok, err := b.Excuser.ExcusedItem(ctx, it)
			if err != nil {
				return nil, fmt.Errorf("compliance: exceptions: %w", err)
			}
			if ok {
				live[i].Excused = true
				r.Excused = append(r.Excused, live[i])
				continue // documented and approved: neither overdue nor an open KEV item
			}
		}
		if it.KnownExploited {
			r.KEVOpen++
			r.KEVItems = append(r.KEVItems, it)
			if at.After(it.Deadline) {
				r.KEVPastDue++
			}
		}
		if at.After(it.Deadline) {
			r.Overdue = append(r.Overdue, it)
			late := at.Sub(it.Deadline)
			for i, a := range ages {
				if late <= a.max {
					r.OverdueAges[i].Count++
					break
				}
			}
		}
	}
	slices.SortFunc(r.Overdue, func(a, b Item) int { return a.Deadline.Compare(b.Deadline) })

	// Failed-update rate per ring.
	rings := map[string]*Rate{}
	for _, it := range live {
		if it.Attempts == 0 {
			continue
		}
		rt := rings[it.Ring]
		if rt == nil {
			rt = &Rate{Ring: it.Ring}
			rings[it.Ring] = rt
		}
		rt.Attempts += it.Attempts
		rt.Failures += it.Failures
	}
	for _, rt := range rings {
		rt.Percent = pct(rt.Failures, rt.Attempts)
		r.FailedRate = append(r.FailedRate, *rt)
	}
	slices.SortFunc(r.FailedRate, func(a, b Rate) int { return cmp.Compare(a.Ring, b.Ring) })

	if b.Exceptions != nil {
		if r.Exceptions, err = b.Exceptions.OpenExceptions(ctx); err != nil {
			return nil, fmt.Errorf("compliance: exceptions: %w", err)
		}
	}
	if b.Source != nil {
		aps, err := b.Source.Approvals(ctx)
		if err != nil {
			return nil, fmt.Errorf("compliance: approvals: %w", err)
		}
		var hours []float64
		for _, a := range aps {
			if !a.Decided.IsZero() && !a.Decided.Before(from) && a.Decided.Before(to.Add(time.Nanosecond)) {
				hours = append(hours, a.Decided.Sub(a.Submitted).Hours())
			}
		}
		slices.Sort(hours)
		r.ApprovalN, r.ApprovalMed, r.ApprovalP90 = len(hours), quantile(hours, 0.5), quantile(hours, 0.9)
	}
	if err := b.addReviews(ctx, r, from, at); err != nil {
		return nil, err
	}
	if b.MFA != nil {
		if r.MFANeeded, r.MFAEnrolled, err = b.MFA.MFACoverage(ctx); err != nil {
			return nil, fmt.Errorf("compliance: mfa: %w", err)
		}
		r.MFAPercent = pct(r.MFAEnrolled, r.MFANeeded)
	}
	if err := b.addVulnerabilities(ctx, r); err != nil {
		return nil, err
	}

	// Trends: the last 12 month ends (the current month as of now).
	for i := 11; i >= 0; i-- {
		end := monthEnd(at, -i)
		var total, patched, overdue int
		for _, it := range items {
			if it.Since.After(end) {
				continue
			}
			total++
			if it.Patched(end) {
				patched++
			} else if end.After(it.Deadline) {
				overdue++
			}
		}
		label := end.Add(-time.Nanosecond).Format("Jan 06")
		r.CoverageTrend = append(r.CoverageTrend, Point{label, pct(patched, total)})
		r.OverdueTrend = append(r.OverdueTrend, Point{label, float64(overdue)})
	}
	return r, nil
}

// monthEnd returns the start of the month after t's month shifted by delta months, or
// t itself for the current month.
func monthEnd(t time.Time, delta int) time.Time {
	if delta == 0 {
		return t
	}
	y, m, _ := t.Date()
	return time.Date(y, m+time.Month(delta)+1, 1, 0, 0, 0, 0, t.Location())
}

func coverage(items []Item, at time.Time, key func(Item) string, order []string) []Coverage {
	m := map[string]*Coverage{}
	for _, k := range order {
		m[k] = &Coverage{Key: k}
	}
	for _, it := range items {
		k := key(it)
		if k == "" {
			k = "unknown"
		}
		c := m[k]
		if c == nil {
			c = &Coverage{Key: k}
			m[k] = c
		}
		c.Total++
		if it.Patched(at) {
			c.Patched++
		}
	}
	var out []Coverage
	for _, c := range m {
		c.Percent = pct(c.Patched, c.Total)
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Coverage) int {
		ia, ib := slices.Index(order, a.Key), slices.Index(order, b.Key)
		if ia >= 0 || ib >= 0 {
			if ia < 0 {
				return 1
			}
			if ib < 0 {
				return -1
			}
			return ia - ib
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

func pct(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return math.Round(1000*float64(part)/float64(whole)) / 10
}

// quantile returns the q-quantile of sorted samples (nearest rank), rounded to 0.1.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return math.Round(sorted[i]*10) / 10
}
