package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/health"
)

// Tick does what time calls for: starts scheduled rollouts that are due, retries
// failed deployments whose back-off has passed, evaluates every running rollout's
// current stage (advance, pause or wait), keeps the cache's pins in line with the
// released rollouts, and refreshes the metrics and health. Run calls it every Tick;
// tests call it after moving the fake clock.
func (e *Engine) Tick(ctx context.Context) error {
	var errs []error
	if err := e.startDue(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.retryDue(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.evaluate(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.syncPins(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := e.refresh(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *Engine) startDue(ctx context.Context) error {
	rs, err := listRollouts(ctx, e.db, Scheduled)
	if err != nil {
		return fmt.Errorf("rollout: start: %w", err)
	}
	now := e.clock.Now()
	var assets []Asset
	for _, r := range rs {
		if r.StartAt.After(now) {
			continue
		}
		if assets == nil {
			if assets, err = e.allAssets(ctx); err != nil {
				return fmt.Errorf("rollout: start: %w", err)
			}
		}
		_, err := e.change(ctx, r.ID, "system", "rollout.start", nil, func(_ context.Context, r *Rollout, now time.Time) error {
			return r.start(now)
		}, func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
			return e.ensureDeployments(ctx, tx, r, assets, now, 0)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) retryDue(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	ids, err := queryAll(ctx, e.db, column[int64], `SELECT d.id FROM rollout_deployments d JOIN rollouts r ON r.id = d.rollout_id
		WHERE d.state = 'failed' AND d.retry_at != '' AND d.retry_at <= ? AND r.state = 'running'`, ts(now))
	if err != nil {
		return fmt.Errorf("rollout: retries: %w", err)
	}
	for _, id := range ids {
		if _, err := e.moveDeploymentLocked(ctx, id, "system", func(d *Deployment, now time.Time) error { return d.retry(now) }); err != nil {
			return fmt.Errorf("rollout: retry: %w", err)
		}
	}
	return nil
}

// evaluate applies each running rollout's current stage thresholds, advancing through
// as many stages as are done (an empty ring passes at once).
func (e *Engine) evaluate(ctx context.Context) error {
	rs, err := listRollouts(ctx, e.db, Running)
	if err != nil {
		return fmt.Errorf("rollout: evaluate: %w", err)
	}
	var assets []Asset
	for _, r := range rs {
		for range len(r.Stages) + 1 {
			if r.State != Running || r.Current >= len(r.Stages) {
				break
			}
			st := r.Stages[r.Current]
			c, err := ringCounts(ctx, e.db, r.ID, st.Ring, st.ErrorsSince)
			if err != nil {
				return fmt.Errorf("rollout: evaluate %d: %w", r.ID, err)
			}
			now := e.clock.Now()
			v := st.Evaluate(c, now)
			stage := strconv.Itoa(r.Current)
			switch v.Action {
			case Pause:
				r, err = e.change(ctx, r.ID, "system", "rollout.pause", map[string]string{"reason": v.Reason, "stage": stage}, func(_ context.Context, r *Rollout, now time.Time) error {
					if r.Current != atoi(stage) {
						return r.stateErr("pause (stage moved)")
					}
					return r.pause(v.Reason, now)
				}, nil)
			case Advance:
				if assets == nil {
					if assets, err = e.allAssets(ctx); err != nil {
						return fmt.Errorf("rollout: evaluate %d: %w", r.ID, err)
					}
				}
				r, err = e.change(ctx, r.ID, "system", "stage.advance", map[string]string{"reason": v.Reason, "stage": stage, "ring": st.Ring}, func(_ context.Context, r *Rollout, now time.Time) error {
					if r.Current != atoi(stage) {
						return r.stateErr("advance (stage moved)")
					}
					r.Stages[r.Current].MetAt = v.MetAt
					return r.advance("", now)
				}, func(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
					if r.State != Running {
						return nil, nil
					}
					return e.ensureDeployments(ctx, tx, r, assets, now, r.Current)
				})
			case Wait:
				if v.MetAt.Equal(st.MetAt) {
					break
				}
				r, err = e.change(ctx, r.ID, "system", "stage.met", map[string]string{"reason": v.Reason, "stage": stage, "ring": st.Ring}, func(_ context.Context, r *Rollout, now time.Time) error {
					if r.State != Running || r.Current != atoi(stage) {
						return r.stateErr("success met (stage moved)")
					}
					r.Stages[r.Current].MetAt = v.MetAt
					return nil
				}, nil)
			}
			if err != nil {
				return err
			}
			if v.Action != Advance {
				break
			}
		}
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// syncPins pins the targets of approved, scheduled, running and paused rollouts in the
// cache and unpins the rest.
func (e *Engine) syncPins(ctx context.Context) error {
	if e.cache == nil {
		return nil
	}
	s, err := e.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("rollout: pins: %w", err)
	}
	want := map[[2]string]bool{}
	for _, r := range s.rollouts {
		if r.State == Completed {
			continue
		}
		for _, p := range r.Release.Targets {
			want[[2]string{r.Release.Repo, p}] = true
		}
	}
	e.pinMu.Lock()
	defer e.pinMu.Unlock()
	for k := range want {
		if !e.pinned[k] {
			e.cache.Pin(k[0], k[1])
			e.pinned[k] = true
		}
	}
	for k := range e.pinned {
		if !want[k] {
			e.cache.Unpin(k[0], k[1])
			delete(e.pinned, k)
		}
	}
	return nil
}

// Prestage asks the cache to prefetch the targets of scheduled, running and paused
// rollouts not yet pre-staged, when the site is off-peak, or when the rollout's first
// window opens within PrefetchLead (or is open, or the rollout skips windows). Run
// calls it after every tick, in its own goroutine.
func (e *Engine) Prestage(ctx context.Context) {
	if e.cache == nil {
		return
	}
	s, err := e.snapshot(ctx)
	if err != nil {
		e.log.Warn("rollout: prestage", "err", err)
		return
	}
	now := e.clock.Now()
	offPeak := false
	if e.cfg.OffPeak != nil {
		if sch, err := e.cfg.OffPeak.Compile(); err == nil {
			offPeak = sch.At(now).Open
		}
	}
	for _, r := range s.rollouts {
		if !r.PrefetchedAt.IsZero() || (r.State != Scheduled && r.State != Running && r.State != Paused) {
			continue
		}
		if !offPeak && !r.SkipsWindows() && !e.windowSoon(s, r, now) {
			continue
		}
		rel := r.Release
		start := e.clock.Now()
		if err := e.cache.Prefetch(ctx, rel.Repo, rel.Targets); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("rollout: prestage failed; will retry", "rollout", r.ID, "repo", rel.Repo, "err", err)
			e.setProblem("rollout-prestage-"+strconv.FormatInt(r.ID, 10), &health.Problem{Severity: health.Warning,
				Text: fmt.Sprintf("rollout %d: pre-staging %d target(s) of %s failed: %v", r.ID, len(rel.Targets), rel.Repo, err)})
			continue
		}
		e.setProblem("rollout-prestage-"+strconv.FormatInt(r.ID, 10), nil)
		_, err := e.change(ctx, r.ID, "system", "rollout.prestage", map[string]string{"targets": strconv.Itoa(len(rel.Targets)),
			"took": e.clock.Now().Sub(start).String()}, func(_ context.Context, r *Rollout, now time.Time) error {
			r.PrefetchedAt = now
			return nil
		}, nil)
		if err != nil {
			e.log.Warn("rollout: record prestage", "rollout", r.ID, "err", err)
		}
	}
}

// windowSoon reports whether a window of any of r's rings (in any segment) is open now
// or opens within PrefetchLead.
func (e *Engine) windowSoon(s *snapshot, r *Rollout, now time.Time) bool {
	for _, w := range s.windows {
		if w.Ring != "" && r.StageOf(w.Ring) < 0 {
			continue
		}
		op := w.s.At(now)
		if op.Open || (!op.Start.IsZero() && op.Start.Sub(now) <= e.cfg.PrefetchLead) {
			return true
		}
	}
	return false
}
