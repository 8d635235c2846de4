package rollout

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// --- rings ---

// Rings lists the rings in order.
func (e *Engine) Rings(ctx context.Context) ([]Ring, error) {
	rs, err := listRings(ctx, e.db)
	if err != nil {
		return nil, fmt.Errorf("rollout: rings: %w", err)
	}
	return rs, nil
}

// PutRing creates or replaces a ring.
func (e *Engine) PutRing(ctx context.Context, actor string, r Ring) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("rollout: ring: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := &Event{Actor: actor, Action: "ring.put", Object: "ring/" + r.Name, Details: map[string]string{"order": strconv.Itoa(r.Order), "selector": js(r.Selector)}}
	err := e.commit(ctx, ev, func(tx *sql.Tx) error { return putRing(ctx, tx, r, e.clock.Now()) })
	if err != nil {
		return fmt.Errorf("rollout: put ring %s: %w", r.Name, err)
	}
	e.invalidate()
	return nil
}

// DeleteRing removes a ring no unfinished rollout uses.
func (e *Engine) DeleteRing(ctx context.Context, actor, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs, err := listRollouts(ctx, e.db, Draft, PendingApproval, Approved, Scheduled, Running, Paused)
	if err != nil {
		return fmt.Errorf("rollout: delete ring %s: %w", name, err)
	}
	for _, r := range rs {
		if r.StageOf(name) >= 0 {
			return fmt.Errorf("rollout: delete ring %s: %w: rollout %d (%s) has a stage on it", name, ErrState, r.ID, r.State)
		}
	}
	ev := &Event{Actor: actor, Action: "ring.delete", Object: "ring/" + name}
	var n int64
	err = e.commit(ctx, ev, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rollout_rings WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return fmt.Errorf("ring %s: %w", name, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rollout: delete ring %s: %w", name, err)
	}
	e.invalidate()
	return nil
}

// --- windows ---

// Windows lists the maintenance windows.
func (e *Engine) Windows(ctx context.Context) ([]Window, error) {
	ws, err := listWindows(ctx, e.db)
	if err != nil {
		return nil, fmt.Errorf("rollout: windows: %w", err)
	}
	return ws, nil
}

// AddWindow creates a maintenance window.
func (e *Engine) AddWindow(ctx context.Context, actor string, w Window) (Window, error) {
	if _, err := w.Compile(); err != nil {
		return Window{}, fmt.Errorf("rollout: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if w.Ring != "" {
		rings, err := listRings(ctx, e.db)
		if err != nil {
			return Window{}, fmt.Errorf("rollout: add window: %w", err)
		}
		if !slices.ContainsFunc(rings, func(r Ring) bool { return r.Name == w.Ring }) {
			return Window{}, fmt.Errorf("rollout: add window: %w: no ring named %q", ErrInvalid, w.Ring)
		}
	}
	id, err := e.nextID(ctx, "rollout_windows")
	if err != nil {
		return Window{}, fmt.Errorf("rollout: add window: %w", err)
	}
	w.ID = id
	ev := &Event{Actor: actor, Action: "window.create", Object: "window/" + strconv.FormatInt(id, 10), Details: map[string]string{
		"name": w.Name, "cron": w.Cron, "duration": w.Duration.String(), "zone": w.Zone, "ring": w.Ring, "segment": w.Segment, "from": w.From, "until": w.Until}}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error { return insertWindow(ctx, tx, &w, e.clock.Now()) })
	if err != nil {
		return Window{}, fmt.Errorf("rollout: add window: %w", err)
	}
	e.invalidate()
	return w, nil
}

// DeleteWindow removes a maintenance window.
func (e *Engine) DeleteWindow(ctx context.Context, actor string, id int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := &Event{Actor: actor, Action: "window.delete", Object: "window/" + strconv.FormatInt(id, 10)}
	err := e.commit(ctx, ev, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rollout_windows WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("window %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rollout: delete window: %w", err)
	}
	e.invalidate()
	return nil
}

// RingOpening is a ring's maintenance window state (for devices in any segment the
// ring-wide windows cover).
type RingOpening struct {
	Ring    string  `json:"ring"`
	Opening Opening `json:"opening"`
	// NoWindow is true when no window applies to the ring at all.
	NoWindow bool `json:"no_window"`
}

// Openings returns every ring's window state now.
func (e *Engine) Openings(ctx context.Context) ([]RingOpening, error) {
	s, err := e.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout: openings: %w", err)
	}
	now := e.clock.Now()
	var out []RingOpening
	for _, r := range s.rings {
		op, ok := s.opening(r.Name, "", now)
		out = append(out, RingOpening{Ring: r.Name, Opening: op, NoWindow: !ok})
	}
	return out, nil
}

// --- releases ---

// CreateRelease records a release entered by hand. Published defaults to now. A
// release from a vendor candidate is made with CreateCandidateRelease only.
func (e *Engine) CreateRelease(ctx context.Context, actor string, r Release) (*Release, error) {
	if r.Candidate != nil {
		return nil, refusef(ErrInvalid, "rollout: release: candidate: a release is made from a candidate with POST /api/v1/candidates/{id}/release")
	}
	return e.createRelease(ctx, actor, r)
}

// CreateCandidateRelease records a release made from the vendor candidate r.Candidate:
// its one target is r.Candidate.Path. A candidate becomes at most one release (ErrState
// for a second). The audit event (release.create) names the candidate.
func (e *Engine) CreateCandidateRelease(ctx context.Context, actor string, r Release) (*Release, error) {
	c := r.Candidate
	if c == nil || c.ID <= 0 || len(c.SHA256) != 64 || c.Size < 0 || len(r.Targets) != 1 || r.Targets[0] != c.Path {
		return nil, refusef(ErrInvalid, "rollout: release: candidate: want a candidate id, sha256, size and its path as the one target")
	}
	if c.Install != nil {
		if err := c.Install.Validate(); err != nil {
			return nil, refusef(ErrInvalid, "rollout: release: candidate: %v", err)
		}
	}
	return e.createRelease(ctx, actor, r)
}

func (e *Engine) createRelease(ctx context.Context, actor string, r Release) (*Release, error) {
	now := e.clock.Now()
	if r.Published.IsZero() {
		r.Published = now
	}
	r.ID, r.CreatedBy, r.CreatedAt = 0, actor, now
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("rollout: release: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id, err := e.nextID(ctx, "rollout_releases")
	if err != nil {
		return nil, fmt.Errorf("rollout: create release: %w", err)
	}
	r.ID = id
	ev := &Event{Actor: actor, Action: "release.create", Object: "release/" + strconv.FormatInt(id, 10), Details: map[string]string{
		"name": r.Name, "version": r.Version, "repo": r.Repo, "targets": strings.Join(r.Targets, " "), "severity": string(r.Severity), "cves": strings.Join(r.CVEs, " "),
		"known_exploited": strconv.FormatBool(r.KnownExploited)}}
	if c := r.Candidate; c != nil {
		prev, err := releaseOfCandidate(ctx, e.db, c.ID)
		if err != nil {
			return nil, fmt.Errorf("rollout: create release: %w", err)
		}
		if prev != 0 {
			return nil, refusef(ErrState, "candidate %d is already release %d", c.ID, prev)
		}
		for k, v := range map[string]string{"candidate": strconv.FormatInt(c.ID, 10), "source": c.Source, "sha256": c.SHA256,
			"size": strconv.FormatInt(c.Size, 10), "url": c.URL, "verification": c.Verification} {
			ev.Details[k] = v
		}
	}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error { return insertRelease(ctx, tx, &r) })
	if err != nil {
		return nil, fmt.Errorf("rollout: create release: %w", err)
	}
	return &r, nil
}

// Release returns one release.
func (e *Engine) Release(ctx context.Context, id int64) (*Release, error) {
	r, err := getRelease(ctx, e.db, id)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	return r, nil
}

// Releases lists the releases, newest first.
func (e *Engine) Releases(ctx context.Context) ([]*Release, error) {
	rs, err := listReleases(ctx, e.db)
	if err != nil {
		return nil, fmt.Errorf("rollout: releases: %w", err)
	}
	return rs, nil
}

// KEVResult says what a KEV import changed.
type KEVResult struct {
	Catalog  string  `json:"catalog_version"`
	Entries  int     `json:"entries"`
	Releases []int64 `json:"releases_marked"`
}

// ImportKEV reads a CISA KEV catalog and marks the releases fixing a listed CVE as
// known-exploited with its due date; open deployments of those releases get their
// deadlines recomputed.
func (e *Engine) ImportKEV(ctx context.Context, actor string, r io.Reader) (KEVResult, error) {
	k, err := ParseKEV(r, e.cfg.Zone)
	if err != nil {
		return KEVResult{}, fmt.Errorf("rollout: import %w", err)
	}
	return e.ApplyKEV(ctx, actor, k)
}

// ApplyKEV marks the releases fixing a CVE of catalog k as known-exploited, as
// ImportKEV does; the advisory intake calls it with each KEV catalog it takes in.
func (e *Engine) ApplyKEV(ctx context.Context, actor string, k *KEV) (KEVResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := KEVResult{Catalog: k.Version, Entries: len(k.Due), Releases: []int64{}}
	rels, err := listReleases(ctx, e.db)
	if err != nil {
		return res, fmt.Errorf("rollout: import kev: %w", err)
	}
	var changed []*Release
	var ids []string
	for _, rel := range rels {
		if k.Apply(rel) {
			changed = append(changed, rel)
			res.Releases = append(res.Releases, rel.ID)
			ids = append(ids, strconv.FormatInt(rel.ID, 10)+"(due "+ts(rel.KEVDue)+")")
		}
	}
	if len(changed) == 0 {
		return res, nil
	}
	ev := &Event{Actor: actor, Action: "release.kev", Object: "kev/" + k.Version, Details: map[string]string{
		"catalog": k.Version, "entries": strconv.Itoa(len(k.Due)), "releases_marked_known_exploited": strings.Join(ids, " ")}}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error {
		for _, rel := range changed {
			if err := updateReleaseKEV(ctx, tx, rel); err != nil {
				return err
			}
			ds, err := listDeployments(ctx, tx, DeploymentFilter{States: openAndFailed, Limit: 1 << 30})
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.ReleaseID != rel.ID {
					continue
				}
				d.Deadline = e.cfg.Policy.Deadline(rel, d.Since)
				if err := saveDeployment(ctx, tx, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("rollout: import kev: %w", err)
	}
	e.invalidate()
	return res, nil
}

var openAndFailed = []DeploymentState{DepScheduled, DepOffered, DepDownloading, DepDownloaded, DepInstalling, DepFailed}

// --- rollouts ---

// RolloutSpec is what a requester says about a rollout. Empty Stages mean one stage per
// ring, in ring order, with DefaultStage's thresholds.
type RolloutSpec struct {
	Name         string  `json:"name"`
	ReleaseID    int64   `json:"release_id"`
	Emergency    bool    `json:"emergency"`
	Stages       []Stage `json:"stages"`
	Risk         string  `json:"risk"`
	TestEvidence string  `json:"test_evidence"`
	RollbackPlan string  `json:"rollback_plan"`
}

// DefaultStage is the thresholds a stage gets when a spec lists none: 95% success,
// pause at 20% failures once 3 results are in, soak 24h (none for the last ring).
func DefaultStage(ring string) Stage {
	return Stage{Ring: ring, SuccessPercent: 95, ErrorPercent: 20, MinResults: 3, Soak: Duration(24 * time.Hour)}
}

func (e *Engine) applySpec(ctx context.Context, r *Rollout, spec RolloutSpec) error {
	rel, err := getRelease(ctx, e.db, spec.ReleaseID)
	if err != nil {
		return err
	}
	rings, err := listRings(ctx, e.db)
	if err != nil {
		return err
	}
	byName := map[string]Ring{}
	for _, rg := range rings {
		byName[rg.Name] = rg
	}
	stages := spec.Stages
	if len(stages) == 0 {
		for i, rg := range rings {
			st := DefaultStage(rg.Name)
			if i == len(rings)-1 {
				st.Soak = 0
			}
			stages = append(stages, st)
		}
	}
	for i := range stages {
		stages[i].StartedAt, stages[i].MetAt, stages[i].ErrorsSince, stages[i].DoneAt, stages[i].ForcedBy = time.Time{}, time.Time{}, time.Time{}, time.Time{}, ""
	}
	if spec.Emergency && !rel.KnownExploited && rel.Severity != Critical {
		return fmt.Errorf("%w: emergency: only a known-exploited or critical release may be rolled out as an emergency; release %d is %s", ErrInvalid, rel.ID, rel.Severity)
	}
	r.Name, r.ReleaseID, r.Release, r.Emergency, r.Stages = spec.Name, rel.ID, rel, spec.Emergency, stages
	r.Risk, r.TestEvidence, r.RollbackPlan = spec.Risk, spec.TestEvidence, spec.RollbackPlan
	if r.Name == "" {
		r.Name = rel.Name
	}
	return r.validateSpec(byName)
}

// CreateRollout makes a draft rollout.
func (e *Engine) CreateRollout(ctx context.Context, actor string, spec RolloutSpec) (*Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	r := &Rollout{State: Draft, CreatedBy: actor, CreatedAt: now, UpdatedAt: now, StateAt: now, Approvals: []Approval{}}
	if err := e.applySpec(ctx, r, spec); err != nil {
		return nil, fmt.Errorf("rollout: create: %w", err)
	}
	id, err := e.nextID(ctx, "rollouts")
	if err != nil {
		return nil, fmt.Errorf("rollout: create: %w", err)
	}
	r.ID = id
	ev := rolloutEvent(r, actor, "rollout.create", map[string]string{
		"name": r.Name, "release": strconv.FormatInt(r.ReleaseID, 10), "emergency": strconv.FormatBool(r.Emergency), "stages": stageSummary(r)})
	err = e.commit(ctx, ev, func(tx *sql.Tx) error { return insertRollout(ctx, tx, r) })
	if err != nil {
		return nil, fmt.Errorf("rollout: create: %w", err)
	}
	return r, nil
}

func stageSummary(r *Rollout) string {
	parts := make([]string, len(r.Stages))
	for i, s := range r.Stages {
		parts[i] = fmt.Sprintf("%s(success %g%%, errors %g%%/%d, soak %s, max %d, prestage %t)", s.Ring, s.SuccessPercent, s.ErrorPercent, s.MinResults, s.Soak, s.MaxConcurrent, s.Prestage)
	}
	return strings.Join(parts, " → ")
}

// UpdateRollout replaces a draft's spec.
func (e *Engine) UpdateRollout(ctx context.Context, actor string, id int64, spec RolloutSpec) (*Rollout, error) {
	return e.change(ctx, id, actor, "rollout.update", nil, func(ctx context.Context, r *Rollout, now time.Time) error {
		if r.State != Draft {
			return r.stateErr("update")
		}
		if err := e.applySpec(ctx, r, spec); err != nil {
			return err
		}
		r.UpdatedAt = now
		return nil
	}, nil)
}

// Rollout returns one rollout with its stages, approvals and release.
func (e *Engine) Rollout(ctx context.Context, id int64) (*Rollout, error) {
	r, err := getRollout(ctx, e.db, id)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	return r, nil
}

// Rollouts lists rollouts in any of states (all when none), newest first.
func (e *Engine) Rollouts(ctx context.Context, states ...State) ([]*Rollout, error) {
	rs, err := listRollouts(ctx, e.db, states...)
	if err != nil {
		return nil, fmt.Errorf("rollout: list: %w", err)
	}
	return rs, nil
}

// Events returns a rollout's history, newest first (at most limit).
func (e *Engine) Events(ctx context.Context, id int64, limit int) ([]Event, error) {
	evs, err := listEvents(ctx, e.db, id, limit)
	if err != nil {
		return nil, fmt.Errorf("rollout: events: %w", err)
	}
	return evs, nil
}

// change runs one transition of rollout id under the engine's lock: fn changes the
// rollout in memory (returning an error refuses it), after (optional) does the side
// effects in the same transaction. The event names the states before and after.
func (e *Engine) change(ctx context.Context, id int64, actor, action string, details map[string]string,
	fn func(ctx context.Context, r *Rollout, now time.Time) error,
	after func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error)) (*Rollout, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changeLocked(ctx, id, actor, action, details, fn, after)
}

func (e *Engine) changeLocked(ctx context.Context, id int64, actor, action string, details map[string]string,
	fn func(ctx context.Context, r *Rollout, now time.Time) error,
	after func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error)) (*Rollout, error) {
	r, err := getRollout(ctx, e.db, id)
	if err != nil {
		return nil, fmt.Errorf("rollout: %s: %w", action, err)
	}
	before := r.State
	now := e.clock.Now()
	if err := fn(ctx, r, now); err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	d := map[string]string{"from": string(before), "to": string(r.State)}
	for k, v := range details {
		d[k] = v
	}
	ev := rolloutEvent(r, actor, action, d)
	ev.Time = now
	var more []*Event
	err = e.commitMore(ctx, ev, func(tx *sql.Tx) ([]*Event, error) {
		if err := saveRollout(ctx, tx, r); err != nil {
			return nil, err
		}
		if after == nil {
			return nil, nil
		}
		var err error
		more, err = after(ctx, tx, r, now)
		return more, err
	})
	if err != nil {
		return nil, fmt.Errorf("rollout: %s rollout %d: %w", action, id, err)
	}
	e.invalidate()
	if before != r.State {
		e.log.Info("rollout: "+action, "rollout", r.ID, "name", r.Name, "from", before, "to", r.State, "actor", actor, "reason", r.Reason)
	}
	return r, nil
}

// Submit asks for approval; by becomes the requester and cannot approve.
func (e *Engine) Submit(ctx context.Context, id int64, by string) (*Rollout, error) {
	return e.change(ctx, id, by, "rollout.submit", nil, func(_ context.Context, r *Rollout, now time.Time) error {
		need := e.cfg.Approvals
		if r.Emergency {
			need = e.cfg.EmergencyApprovals
		}
		return r.submit(by, need, now)
	}, nil)
}

// Approve records by's approval. Separation of duties is enforced here, whatever the
// caller checked: the requester cannot approve, nobody approves twice, and an
// emergency rollout needs EmergencyApprovals (at least two) distinct approvers other
// than the requester. The rollout is approved once it has enough approvals.
// Once approved, the OnApproved hook is called.
func (e *Engine) Approve(ctx context.Context, id int64, by, remark string) (*Rollout, error) {
	r, err := e.change(ctx, id, by, "rollout.approve", map[string]string{"remark": remark}, func(_ context.Context, r *Rollout, now time.Time) error {
		_, err := r.approve(by, remark, now)
		return err
	}, nil)
	if err == nil && r.State == Approved {
		if fn := e.onApproved.Load(); fn != nil {
			(*fn)(ctx, r)
		}
	}
	return r, err
}

// OnApproved sets fn to be called each time a rollout becomes approved, after the
// approval is committed and outside the engine's lock (the appliance signs the target
// of a release made from a candidate then). fn reports its own failures.
func (e *Engine) OnApproved(fn func(ctx context.Context, r *Rollout)) { e.onApproved.Store(&fn) }

// Reject sends a pending rollout back to draft with a remark.
func (e *Engine) Reject(ctx context.Context, id int64, by, remark string) (*Rollout, error) {
	return e.change(ctx, id, by, "rollout.reject", map[string]string{"remark": remark}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.reject(by, remark, now)
	}, nil)
}

// Schedule sets an approved rollout to start at start (zero: now) and creates its
// deployments, one per device in its rings.
func (e *Engine) Schedule(ctx context.Context, id int64, by string, start time.Time) (*Rollout, error) {
	assets, err := e.allAssets(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout: schedule: %w", err)
	}
	return e.change(ctx, id, by, "rollout.schedule", map[string]string{"start": ts(start)}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.schedule(start, now)
	}, func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
		return e.ensureDeployments(ctx, tx, r, assets, now, -1)
	})
}

// Pause stops a running rollout from handing out the release.
func (e *Engine) Pause(ctx context.Context, id int64, by, reason string) (*Rollout, error) {
	if strings.TrimSpace(reason) == "" {
		reason = "paused by " + by
	}
	return e.change(ctx, id, by, "rollout.pause", map[string]string{"reason": reason}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.pause(reason, now)
	}, nil)
}

// Resume continues a paused rollout.
func (e *Engine) Resume(ctx context.Context, id int64, by, remark string) (*Rollout, error) {
	return e.change(ctx, id, by, "rollout.resume", map[string]string{"remark": remark}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.resume(now)
	}, nil)
}

// Halt stops a rollout for good; its open deployments are cancelled.
func (e *Engine) Halt(ctx context.Context, id int64, by, reason string) (*Rollout, error) {
	return e.change(ctx, id, by, "rollout.halt", map[string]string{"reason": reason}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.halt(reason, now)
	}, e.cancelDeployments)
}

// Cancel withdraws a rollout that has not started; its deployments are cancelled.
func (e *Engine) Cancel(ctx context.Context, id int64, by, reason string) (*Rollout, error) {
	if strings.TrimSpace(reason) == "" {
		reason = "cancelled by " + by
	}
	return e.change(ctx, id, by, "rollout.cancel", map[string]string{"reason": reason}, func(_ context.Context, r *Rollout, now time.Time) error {
		return r.cancel(reason, now)
	}, e.cancelDeployments)
}

// ForceAdvance ends the current stage without its thresholds (recording who) and
// starts the next ring. A reason is required.
func (e *Engine) ForceAdvance(ctx context.Context, id int64, by, reason string) (*Rollout, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("rollout: force stage: %w: a reason is required", ErrInvalid)
	}
	assets, err := e.allAssets(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout: force stage: %w", err)
	}
	return e.change(ctx, id, by, "stage.force", map[string]string{"reason": reason}, func(_ context.Context, r *Rollout, now time.Time) error {
		if r.State == Running {
			return r.advance(by, now)
		}
		return r.stateErr("force stage")
	}, func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
		if r.State != Running {
			return nil, nil
		}
		return e.ensureDeployments(ctx, tx, r, assets, now, r.Current)
	})
}
