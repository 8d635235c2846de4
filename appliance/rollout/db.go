package rollout

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate brings the rollout tables of db to this binary's schema.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateFS(ctx, "rollout", migrationFiles, "migrations")
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner = store.Row

// queryAll is store.Query: every row as scan reads it (nil for none), the rows closed
// before it returns, so the caller may query again in the same transaction.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	return store.Query(ctx, q, scan, query, args...)
}

// countBy runs a query of (key, count) rows and returns the counts by key.
func countBy(ctx context.Context, q querier, query string, args ...any) (map[string]int, error) {
	type kn struct {
		k string
		n int
	}
	rows, err := queryAll(ctx, q, func(sc scanner) (kn, error) {
		var r kn
		return r, sc.Scan(&r.k, &r.n)
	}, query, args...)
	m := map[string]int{}
	for _, r := range rows {
		m[r.k] = r.n
	}
	return m, err
}

// column scans a row of one column.
func column[T any](sc scanner) (T, error) {
	var v T
	err := sc.Scan(&v)
	return v, err
}

// timeLayout is fixed-width so that stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func pt(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("rollout: marshal %T: %v", v, err)) // only our own plain types
	}
	return string(b)
}

func fromJS(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// --- rings ---

func listRings(ctx context.Context, q querier) ([]Ring, error) {
	return queryAll(ctx, q, func(sc scanner) (Ring, error) {
		var r Ring
		var sel string
		if err := sc.Scan(&r.Name, &r.Order, &sel); err != nil {
			return r, err
		}
		if err := fromJS(sel, &r.Selector); err != nil {
			return r, fmt.Errorf("ring %s: selector: %w", r.Name, err)
		}
		return r, nil
	}, `SELECT name, ord, selector FROM rollout_rings ORDER BY ord, name`)
}

func putRing(ctx context.Context, q querier, r Ring, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO rollout_rings(name, ord, selector, created_at, updated_at) VALUES(?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET ord = excluded.ord, selector = excluded.selector, updated_at = excluded.updated_at`,
		r.Name, r.Order, js(r.Selector), ts(now), ts(now))
	return err
}

// --- windows ---

func listWindows(ctx context.Context, q querier) ([]Window, error) {
	return queryAll(ctx, q, func(sc scanner) (Window, error) {
		var w Window
		var secs int64
		err := sc.Scan(&w.ID, &w.Name, &w.Cron, &secs, &w.Zone, &w.From, &w.Until, &w.Ring, &w.Segment)
		w.Duration = Duration(time.Duration(secs) * time.Second)
		return w, err
	}, `SELECT id, name, cron, duration_s, zone, from_day, until_day, ring, segment FROM rollout_windows ORDER BY id`)
}

func insertWindow(ctx context.Context, q querier, w *Window, now time.Time) error {
	res, err := q.ExecContext(ctx, `INSERT INTO rollout_windows(id, name, cron, duration_s, zone, from_day, until_day, ring, segment, created_at)
		VALUES(?,?,?,?,?,?,?,?,?,?)`, nullID(w.ID), w.Name, w.Cron, int64(w.Duration.D()/time.Second), w.Zone, w.From, w.Until, w.Ring, w.Segment, ts(now))
	if err != nil {
		return err
	}
	w.ID, err = res.LastInsertId()
	return err
}

// --- releases ---

const releaseCols = `id, name, version, repo, targets, severity, cves, known_exploited, kev_due, published, notes, created_by, created_at, candidate`

func scanRelease(sc scanner) (*Release, error) {
	var r Release
	var targets, cves, kevDue, published, created, candidate string
	var ke int
	if err := sc.Scan(&r.ID, &r.Name, &r.Version, &r.Repo, &targets, &r.Severity, &cves, &ke, &kevDue, &published, &r.Notes, &r.CreatedBy, &created, &candidate); err != nil {
		return nil, err
	}
	if err := errors.Join(fromJS(targets, &r.Targets), fromJS(cves, &r.CVEs), fromJS(candidate, &r.Candidate)); err != nil {
		return nil, fmt.Errorf("release %d: %w", r.ID, err)
	}
	r.KnownExploited, r.KEVDue, r.Published, r.CreatedAt = ke != 0, pt(kevDue), pt(published), pt(created)
	return &r, nil
}

func getRelease(ctx context.Context, q querier, id int64) (*Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM rollout_releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %d: %w", id, ErrNotFound)
	}
	return r, err
}

func listReleases(ctx context.Context, q querier) ([]*Release, error) {
	return queryAll(ctx, q, scanRelease, `SELECT `+releaseCols+` FROM rollout_releases ORDER BY id DESC`)
}

func insertRelease(ctx context.Context, q querier, r *Release) error {
	var candidateID any
	candidate := ""
	if r.Candidate != nil {
		candidateID, candidate = r.Candidate.ID, js(r.Candidate)
	}
	res, err := q.ExecContext(ctx, `INSERT INTO rollout_releases(id, name, version, repo, targets, severity, cves, known_exploited, kev_due, published, notes, created_by, created_at, candidate_id, candidate)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, nullID(r.ID), r.Name, r.Version, r.Repo, js(r.Targets), r.Severity, js(nonNil(r.CVEs)), b2i(r.KnownExploited),
		ts(r.KEVDue), ts(r.Published), r.Notes, r.CreatedBy, ts(r.CreatedAt), candidateID, candidate)
	if err != nil {
		return err
	}
	r.ID, err = res.LastInsertId()
	return err
}

// releaseOfCandidate is the id of the release made from candidate id (0: none).
func releaseOfCandidate(ctx context.Context, q querier, id int64) (int64, error) {
	var rel int64
	err := q.QueryRowContext(ctx, `SELECT id FROM rollout_releases WHERE candidate_id = ?`, id).Scan(&rel)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return rel, err
}

func updateReleaseKEV(ctx context.Context, q querier, r *Release) error {
	_, err := q.ExecContext(ctx, `UPDATE rollout_releases SET known_exploited = ?, kev_due = ? WHERE id = ?`, b2i(r.KnownExploited), ts(r.KEVDue), r.ID)
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// --- rollouts ---

const rolloutCols = `id, name, release_id, state, emergency, current_stage, start_at, reason, risk, test_evidence, rollback_plan,
	created_by, requested_by, approvals_needed, created_at, updated_at, state_at, prefetched_at`

func scanRollout(sc scanner) (*Rollout, error) {
	var r Rollout
	var em int
	var startAt, created, updated, stateAt, prefetched string
	if err := sc.Scan(&r.ID, &r.Name, &r.ReleaseID, &r.State, &em, &r.Current, &startAt, &r.Reason, &r.Risk, &r.TestEvidence, &r.RollbackPlan,
		&r.CreatedBy, &r.RequestedBy, &r.ApprovalsNeeded, &created, &updated, &stateAt, &prefetched); err != nil {
		return nil, err
	}
	r.Emergency = em != 0
	r.StartAt, r.CreatedAt, r.UpdatedAt, r.StateAt, r.PrefetchedAt = pt(startAt), pt(created), pt(updated), pt(stateAt), pt(prefetched)
	return &r, nil
}

// getRollout loads a rollout with its stages, approvals and release.
func getRollout(ctx context.Context, q querier, id int64) (*Rollout, error) {
	r, err := scanRollout(q.QueryRowContext(ctx, `SELECT `+rolloutCols+` FROM rollouts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := fillRollout(ctx, q, r); err != nil {
		return nil, err
	}
	return r, nil
}

// listRollouts loads the rollouts in any of states (all when none), newest first.
func listRollouts(ctx context.Context, q querier, states ...State) ([]*Rollout, error) {
	query := `SELECT ` + rolloutCols + ` FROM rollouts`
	var args []any
	if len(states) > 0 {
		query += ` WHERE state IN (?` + strings.Repeat(",?", len(states)-1) + `)`
		for _, s := range states {
			args = append(args, s)
		}
	}
	out, err := queryAll(ctx, q, scanRollout, query+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		if err := fillRollout(ctx, q, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fillRollout(ctx context.Context, q querier, r *Rollout) error {
	var err error
	r.Stages, err = queryAll(ctx, q, func(sc scanner) (Stage, error) {
		var s Stage
		var soak int64
		var pre int
		var started, met, since, done string
		err := sc.Scan(&s.Ring, &s.SuccessPercent, &s.ErrorPercent, &s.MinResults, &soak, &s.MaxConcurrent, &pre,
			&started, &met, &since, &done, &s.ForcedBy)
		s.Soak, s.Prestage = Duration(time.Duration(soak)*time.Second), pre != 0
		s.StartedAt, s.MetAt, s.ErrorsSince, s.DoneAt = pt(started), pt(met), pt(since), pt(done)
		return s, err
	}, `SELECT ring, success_percent, error_percent, min_results, soak_s, max_concurrent, prestage,
		started_at, met_at, errors_since, done_at, forced_by FROM rollout_stages WHERE rollout_id = ? ORDER BY idx`, r.ID)
	if err != nil {
		return err
	}
	r.Approvals, err = queryAll(ctx, q, func(sc scanner) (Approval, error) {
		var a Approval
		var at string
		err := sc.Scan(&a.By, &at, &a.Remark)
		a.At = pt(at)
		return a, err
	}, `SELECT approver, at, remark FROM rollout_approvals WHERE rollout_id = ? ORDER BY seq`, r.ID)
	if err != nil {
		return err
	}
	if r.Approvals == nil {
		r.Approvals = []Approval{} // "approvals": [] in JSON
	}
	rel, err := getRelease(ctx, q, r.ReleaseID)
	if err != nil {
		return err
	}
	r.Release = rel
	return nil
}

func insertRollout(ctx context.Context, q querier, r *Rollout) error {
	res, err := q.ExecContext(ctx, `INSERT INTO rollouts(id, name, release_id, state, emergency, current_stage, start_at, reason, risk, test_evidence,
		rollback_plan, created_by, requested_by, approvals_needed, created_at, updated_at, state_at, prefetched_at)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, nullID(r.ID), r.Name, r.ReleaseID, r.State, b2i(r.Emergency), r.Current, ts(r.StartAt), r.Reason,
		r.Risk, r.TestEvidence, r.RollbackPlan, r.CreatedBy, r.RequestedBy, r.ApprovalsNeeded, ts(r.CreatedAt), ts(r.UpdatedAt), ts(r.StateAt), ts(r.PrefetchedAt))
	if err != nil {
		return err
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	return saveChildren(ctx, q, r)
}

// saveRollout writes every field of r, its stages and approvals.
func saveRollout(ctx context.Context, q querier, r *Rollout) error {
	_, err := q.ExecContext(ctx, `UPDATE rollouts SET name = ?, state = ?, emergency = ?, current_stage = ?, start_at = ?, reason = ?, risk = ?,
		test_evidence = ?, rollback_plan = ?, requested_by = ?, approvals_needed = ?, updated_at = ?, state_at = ?, prefetched_at = ? WHERE id = ?`,
		r.Name, r.State, b2i(r.Emergency), r.Current, ts(r.StartAt), r.Reason, r.Risk, r.TestEvidence, r.RollbackPlan, r.RequestedBy,
		r.ApprovalsNeeded, ts(r.UpdatedAt), ts(r.StateAt), ts(r.PrefetchedAt), r.ID)
	if err != nil {
		return err
	}
	return saveChildren(ctx, q, r)
}

func saveChildren(ctx context.Context, q querier, r *Rollout) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM rollout_stages WHERE rollout_id = ?`, r.ID); err != nil {
		return err
	}
	for i, s := range r.Stages {
		if _, err := q.ExecContext(ctx, `INSERT INTO rollout_stages(rollout_id, idx, ring, success_percent, error_percent, min_results, soak_s,
			max_concurrent, prestage, started_at, met_at, errors_since, done_at, forced_by) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, i, s.Ring, s.SuccessPercent, s.ErrorPercent, s.MinResults, int64(s.Soak.D()/time.Second), s.MaxConcurrent, b2i(s.Prestage),
			ts(s.StartedAt), ts(s.MetAt), ts(s.ErrorsSince), ts(s.DoneAt), s.ForcedBy); err != nil {
			return err
		}
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM rollout_approvals WHERE rollout_id = ?`, r.ID); err != nil {
		return err
	}
	for i, a := range r.Approvals {
		if _, err := q.ExecContext(ctx, `INSERT INTO rollout_approvals(rollout_id, seq, approver, at, remark) VALUES(?,?,?,?,?)`,
			r.ID, i, a.By, ts(a.At), a.Remark); err != nil {
			return err
		}
	}
	return nil
}

// --- deployments ---

const deploymentCols = `id, rollout_id, release_id, asset_id, asset_name, agent_id, ring, state, state_at, times, attempt, max_attempts,
	retry_at, result_at, since, deadline, exit_code, log_tail, detail, delivered`

func scanDeployment(sc scanner) (*Deployment, error) {
	var d Deployment
	var stateAt, times, retryAt, resultAt, since, deadline, delivered string
	var exit sql.NullInt64
	if err := sc.Scan(&d.ID, &d.RolloutID, &d.ReleaseID, &d.AssetID, &d.AssetName, &d.AgentID, &d.Ring, &d.State, &stateAt, &times,
		&d.Attempt, &d.MaxAttempts, &retryAt, &resultAt, &since, &deadline, &exit, &d.LogTail, &d.Detail, &delivered); err != nil {
		return nil, err
	}
	var tm map[DeploymentState]string
	if err := errors.Join(fromJS(times, &tm), fromJS(delivered, &d.Delivered)); err != nil {
		return nil, fmt.Errorf("deployment %d: %w", d.ID, err)
	}
	d.Times = make(map[DeploymentState]time.Time, len(tm))
	for k, v := range tm {
		d.Times[k] = pt(v)
	}
	if exit.Valid {
		v := int(exit.Int64)
		d.ExitCode = &v
	}
	d.StateAt, d.RetryAt, d.ResultAt, d.Since, d.Deadline = pt(stateAt), pt(retryAt), pt(resultAt), pt(since), pt(deadline)
	return &d, nil
}

func deploymentTimes(d *Deployment) string {
	m := make(map[DeploymentState]string, len(d.Times))
	for k, v := range d.Times {
		m[k] = ts(v)
	}
	return js(m)
}

func exitArg(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func insertDeployment(ctx context.Context, q querier, d *Deployment) error {
	res, err := q.ExecContext(ctx, `INSERT INTO rollout_deployments(id, rollout_id, release_id, asset_id, asset_name, agent_id, ring, state, state_at,
		times, attempt, max_attempts, retry_at, result_at, since, deadline, exit_code, log_tail, detail, delivered)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, nullID(d.ID), d.RolloutID, d.ReleaseID, d.AssetID, d.AssetName, d.AgentID, d.Ring, d.State,
		ts(d.StateAt), deploymentTimes(d), d.Attempt, d.MaxAttempts, ts(d.RetryAt), ts(d.ResultAt), ts(d.Since), ts(d.Deadline),
		exitArg(d.ExitCode), d.LogTail, d.Detail, js(nonNil(d.Delivered)))
	if err != nil {
		return err
	}
	d.ID, err = res.LastInsertId()
	return err
}

func saveDeployment(ctx context.Context, q querier, d *Deployment) error {
	_, err := q.ExecContext(ctx, `UPDATE rollout_deployments SET asset_name = ?, agent_id = ?, ring = ?, state = ?, state_at = ?, times = ?,
		attempt = ?, retry_at = ?, result_at = ?, since = ?, deadline = ?, exit_code = ?, log_tail = ?, detail = ?, delivered = ? WHERE id = ?`,
		d.AssetName, d.AgentID, d.Ring, d.State, ts(d.StateAt), deploymentTimes(d), d.Attempt, ts(d.RetryAt), ts(d.ResultAt), ts(d.Since),
		ts(d.Deadline), exitArg(d.ExitCode), d.LogTail, d.Detail, js(nonNil(d.Delivered)), d.ID)
	return err
}

func getDeployment(ctx context.Context, q querier, id int64) (*Deployment, error) {
	d, err := scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM rollout_deployments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("deployment %d: %w", id, ErrNotFound)
	}
	return d, err
}

// DeploymentFilter selects deployments; zero fields do not filter.
type DeploymentFilter struct {
	RolloutID int64
	AssetID   string
	Ring      string
	States    []DeploymentState
	Limit     int // 0: 1000
}

func listDeployments(ctx context.Context, q querier, f DeploymentFilter) ([]*Deployment, error) {
	var where []string
	var args []any
	if f.RolloutID != 0 {
		where, args = append(where, "rollout_id = ?"), append(args, f.RolloutID)
	}
	if f.AssetID != "" {
		where, args = append(where, "asset_id = ?"), append(args, f.AssetID)
	}
	if f.Ring != "" {
		where, args = append(where, "ring = ?"), append(args, f.Ring)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(",?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	query := `SELECT ` + deploymentCols + ` FROM rollout_deployments`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	return queryAll(ctx, q, scanDeployment, query+fmt.Sprintf(" ORDER BY id LIMIT %d", limit), args...)
}

// ringCounts counts a ring's deployments of a rollout for its stage's thresholds.
func ringCounts(ctx context.Context, q querier, rolloutID int64, ring string, errorsSince time.Time) (Counts, error) {
	var c Counts
	err := q.QueryRowContext(ctx, `SELECT
		COUNT(*) FILTER (WHERE state != 'cancelled'),
		COUNT(*) FILTER (WHERE state IN ('succeeded','skipped')),
		COUNT(*) FILTER (WHERE state = 'failed'),
		COUNT(*) FILTER (WHERE state IN ('downloading','downloaded','installing')),
		COUNT(*) FILTER (WHERE state IN ('succeeded','skipped') AND result_at >= ?1),
		COUNT(*) FILTER (WHERE state = 'failed' AND result_at >= ?1)
		FROM rollout_deployments WHERE rollout_id = ?2 AND ring = ?3`, ts(errorsSince), rolloutID, ring).
		Scan(&c.Total, &c.Succeeded, &c.Failed, &c.InFlight, &c.RecentSucceeded, &c.RecentFailed)
	return c, err
}

// --- events ---

func insertEvent(ctx context.Context, q querier, ev *Event) error {
	_, err := q.ExecContext(ctx, `INSERT INTO rollout_events(at, actor, action, object, rollout_id, deployment_id, details) VALUES(?,?,?,?,?,?,?)`,
		ts(ev.Time), ev.Actor, ev.Action, ev.Object, nullID(ev.RolloutID), nullID(ev.DeploymentID), js(ev.Details))
	return err
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func listEvents(ctx context.Context, q querier, rolloutID int64, limit int) ([]Event, error) {
	return queryAll(ctx, q, func(sc scanner) (Event, error) {
		var ev Event
		var at, details string
		if err := sc.Scan(&at, &ev.Actor, &ev.Action, &ev.Object, &ev.RolloutID, &ev.DeploymentID, &details); err != nil {
			return ev, err
		}
		ev.Time = pt(at)
		return ev, fromJS(details, &ev.Details)
	}, `SELECT at, actor, action, object, COALESCE(rollout_id, 0), COALESCE(deployment_id, 0), details
		FROM rollout_events WHERE rollout_id = ? ORDER BY id DESC LIMIT ?`, rolloutID, limit)
}
