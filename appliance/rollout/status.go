package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/health"
)

// Overdue counts, by severity, the devices past a deadline.
type Overdue struct {
	Severity Severity `json:"severity"`
	Assets   int      `json:"assets"`
}

// OverdueItem is one device past a release's deadline.
type OverdueItem struct {
	AssetID   string          `json:"asset_id"`
	AssetName string          `json:"asset_name"`
	Release   string          `json:"release"`
	Severity  Severity        `json:"severity"`
	Deadline  time.Time       `json:"deadline"`
	State     DeploymentState `json:"state"`
}

// OverdueAssets counts the devices past the deadline of a release they do not have
// (deployments not succeeded, skipped or cancelled), by severity, and lists the
// longest overdue (at most limit).
func (e *Engine) OverdueAssets(ctx context.Context, limit int) ([]Overdue, []OverdueItem, error) {
	now := ts(e.clock.Now())
	counts, err := countBy(ctx, e.db, `SELECT r.severity, COUNT(DISTINCT d.asset_id) FROM rollout_deployments d
		JOIN rollout_releases r ON r.id = d.release_id
		WHERE d.state NOT IN ('succeeded','skipped','cancelled') AND d.deadline < ? GROUP BY r.severity`, now)
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: overdue: %w", err)
	}
	var out []Overdue
	for _, s := range Severities {
		out = append(out, Overdue{Severity: s, Assets: counts[string(s)]})
	}
	items, err := queryAll(ctx, e.db, func(sc scanner) (OverdueItem, error) {
		var it OverdueItem
		var dl string
		err := sc.Scan(&it.AssetID, &it.AssetName, &it.Release, &it.Severity, &dl, &it.State)
		it.Deadline = pt(dl)
		return it, err
	}, `SELECT d.asset_id, d.asset_name, r.name, r.severity, d.deadline, d.state FROM rollout_deployments d
		JOIN rollout_releases r ON r.id = d.release_id
		WHERE d.state NOT IN ('succeeded','skipped','cancelled') AND d.deadline < ? ORDER BY d.deadline LIMIT ?`, now, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: overdue: %w", err)
	}
	return out, items, nil
}

// refresh updates the gauges and the health problems.
func (e *Engine) refresh(ctx context.Context) error {
	rs, err := countBy(ctx, e.db, `SELECT state, COUNT(*) FROM rollouts GROUP BY state`)
	if err != nil {
		return fmt.Errorf("rollout: metrics: %w", err)
	}
	for _, s := range States {
		e.met.rollouts.WithLabelValues(string(s)).Set(float64(rs[string(s)]))
	}
	ds, err := countBy(ctx, e.db, `SELECT state, COUNT(*) FROM rollout_deployments GROUP BY state`)
	if err != nil {
		return fmt.Errorf("rollout: metrics: %w", err)
	}
	for _, s := range DeploymentStates {
		e.met.deployments.WithLabelValues(string(s)).Set(float64(ds[string(s)]))
	}
	od, _, err := e.OverdueAssets(ctx, 0)
	if err != nil {
		return err
	}
	var parts []string
	total := 0
	for _, o := range od {
		e.met.overdue.WithLabelValues(string(o.Severity)).Set(float64(o.Assets))
		if o.Assets > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o.Severity, o.Assets))
			total += o.Assets
		}
	}
	if total > 0 {
		e.setProblem("rollout-overdue", &health.Problem{Severity: health.Warning,
			Text: fmt.Sprintf("devices past their patch deadline: %s", strings.Join(parts, ", "))})
	} else {
		e.setProblem("rollout-overdue", nil)
	}
	paused, err := listRollouts(ctx, e.db, Paused)
	if err != nil {
		return fmt.Errorf("rollout: health: %w", err)
	}
	e.probMu.Lock()
	for code := range e.problem {
		if strings.HasPrefix(code, "rollout-paused-") {
			delete(e.problem, code)
		}
	}
	e.probMu.Unlock()
	for _, r := range paused {
		e.setProblem("rollout-paused-"+strconv.FormatInt(r.ID, 10), &health.Problem{Severity: health.Warning,
			Text: fmt.Sprintf("rollout %d (%s) is paused: %s", r.ID, r.Name, r.Reason)})
	}
	return nil
}

// Status is the engine's state as data: what the status page's rollout panel shows.
type Status struct {
	Now      time.Time     `json:"now"`
	Rollouts []Summary     `json:"rollouts"`
	Windows  []RingOpening `json:"windows"`
	Overdue  []Overdue     `json:"overdue"`
	Oldest   []OverdueItem `json:"oldest_overdue"`
	Error    string        `json:"error,omitempty"`
}

// Summary is one rollout's line: its stage and each ring's progress.
type Summary struct {
	ID        int64         `json:"id"`
	Name      string        `json:"name"`
	Release   string        `json:"release"`
	Severity  Severity      `json:"severity"`
	KEV       bool          `json:"known_exploited"`
	Emergency bool          `json:"emergency"`
	State     State         `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	Stage     string        `json:"stage"`
	Rings     []RingSummary `json:"rings"`
}

// RingSummary is a ring's progress within a rollout.
type RingSummary struct {
	Ring        string `json:"ring"`
	Counts      Counts `json:"counts"`
	DonePercent int    `json:"done_percent"`
	FailPercent int    `json:"fail_percent"`
	Status      string `json:"status"` // waiting, current, done
}

// Status returns the recent rollouts with each ring's progress, the next window of each
// ring and the devices past their deadlines; a database error is in Status.Error. It is
// safe for concurrent use.
func (e *Engine) Status(ctx context.Context) Status {
	d := Status{Now: e.clock.Now()}
	if err := e.status(ctx, &d); err != nil {
		d.Error = err.Error()
	}
	return d
}

// recentFinished is how long finished rollouts stay on the panel.
const recentFinished = 7 * 24 * time.Hour

func (e *Engine) status(ctx context.Context, d *Status) error {
	rs, err := listRollouts(ctx, e.db)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.State.Final() && d.Now.Sub(r.StateAt) > recentFinished {
			continue
		}
		if len(d.Rollouts) == 20 {
			break
		}
		pr := Summary{ID: r.ID, Name: r.Name, Release: r.Release.Name, Severity: r.Release.Severity, KEV: r.Release.KnownExploited,
			Emergency: r.Emergency, State: r.State, Reason: r.Reason}
		switch {
		case r.State == Completed:
			pr.Stage = "all rings done"
		case r.State == Running || r.State == Paused:
			pr.Stage = fmt.Sprintf("%d of %d: %s", r.Current+1, len(r.Stages), r.Stages[r.Current].Ring)
		case r.State == Scheduled:
			pr.Stage = "starts " + r.StartAt.UTC().Format("2006-01-02 15:04Z")
		default:
			pr.Stage = "-"
		}
		for i, st := range r.Stages {
			c, err := ringCounts(ctx, e.db, r.ID, st.Ring, st.ErrorsSince)
			if err != nil {
				return err
			}
			ring := RingSummary{Ring: st.Ring, Counts: c, Status: "waiting"}
			if c.Total > 0 {
				ring.DonePercent = 100 * c.Succeeded / c.Total
				ring.FailPercent = 100 * c.Failed / c.Total
			}
			switch {
			case !st.DoneAt.IsZero() || r.State == Completed:
				ring.Status = "done"
			case (r.State == Running || r.State == Paused) && i == r.Current:
				ring.Status = "current"
			}
			pr.Rings = append(pr.Rings, ring)
		}
		d.Rollouts = append(d.Rollouts, pr)
	}
	if d.Windows, err = e.Openings(ctx); err != nil {
		return err
	}
	d.Overdue, d.Oldest, err = e.OverdueAssets(ctx, 10)
	return err
}
