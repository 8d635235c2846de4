package compliance

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Finding is a vulnerability finding (appliance/advisory) as the report shows it:
// an asset concerned by a vulnerability since FirstSeen, closed at ClosedAt (zero while
// open), and the release that fixes it — for a closed finding, the release that closed
// it. Ambiguous matches are not findings here: the source leaves them out.
type Finding struct {
	AssetID   string    `json:"asset_id"`
	Asset     string    `json:"asset"`
	Vuln      string    `json:"vuln"`
	Severity  string    `json:"severity"` // critical, high, medium, low, unknown
	Exploited bool      `json:"exploited"`
	FirstSeen time.Time `json:"first_seen"`
	Deadline  time.Time `json:"deadline,omitzero"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	Release   string    `json:"release,omitempty"`
	ReleaseID string    `json:"release_id,omitempty"`
}

// Findings gives the vulnerability findings, open and closed (the advisory service).
type Findings interface {
	ComplianceFindings(ctx context.Context) ([]Finding, error)
}

// VulnCount is the open findings of one severity, by age (time since first seen).
type VulnCount struct {
	Severity  string   `json:"severity"`
	Open      int      `json:"open"`
	Exploited int      `json:"exploited"`
	PastDue   int      `json:"past_due"`
	Ages      []Bucket `json:"by_age"`
}

// Vulnerabilities is the report's part on findings.
type Vulnerabilities struct {
	Open   []VulnCount `json:"open_by_severity"`
	Items  []Finding   `json:"open"`   // open at the report's end, oldest first
	Closed []Finding   `json:"closed"` // closed in the period, each with the release that closed it
}

var findingAges = []struct {
	label string
	max   time.Duration
}{{"0-7 days", 7 * 24 * time.Hour}, {"8-30 days", 30 * 24 * time.Hour}, {"31-90 days", 90 * 24 * time.Hour}, {"over 90 days", math.MaxInt64}}

// vulnerabilities counts fs as of at, for the period [from, at].
func vulnerabilities(fs []Finding, from, at time.Time) *Vulnerabilities {
	v := &Vulnerabilities{Items: []Finding{}, Closed: []Finding{}}
	sevs := append(slices.Clone(Severities), "unknown")
	idx := map[string]int{}
	for i, s := range sevs {
		c := VulnCount{Severity: s}
		for _, a := range findingAges {
			c.Ages = append(c.Ages, Bucket{Label: a.label})
		}
		v.Open = append(v.Open, c)
		idx[s] = i
	}
	for _, f := range fs {
		if f.FirstSeen.After(at) {
			continue
		}
		if !f.ClosedAt.IsZero() && !f.ClosedAt.After(at) {
			if !f.ClosedAt.Before(from) {
				v.Closed = append(v.Closed, f)
			}
			continue
		}
		i, ok := idx[f.Severity]
		if !ok {
			i = idx["unknown"]
		}
		c := &v.Open[i]
		c.Open++
		if f.Exploited {
			c.Exploited++
		}
		if !f.Deadline.IsZero() && at.After(f.Deadline) {
			c.PastDue++
		}
		age := at.Sub(f.FirstSeen)
		for j, a := range findingAges {
			if age <= a.max {
				c.Ages[j].Count++
				break
			}
		}
		v.Items = append(v.Items, f)
	}
	slices.SortFunc(v.Items, func(a, b Finding) int { return a.FirstSeen.Compare(b.FirstSeen) })
	slices.SortFunc(v.Closed, func(a, b Finding) int { return a.ClosedAt.Compare(b.ClosedAt) })
	return v
}

// addVulnerabilities fills r.Vulnerabilities from b.Findings.
func (b *Builder) addVulnerabilities(ctx context.Context, r *Report) error {
	if b.Findings == nil {
		return nil
	}
	fs, err := b.Findings.ComplianceFindings(ctx)
	if err != nil {
		return fmt.Errorf("compliance: findings: %w", err)
	}
	r.Vulnerabilities = vulnerabilities(fs, r.From, r.To)
	return nil
}
