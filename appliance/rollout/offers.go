package rollout

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchgate/patchgate/agentapi"
)

func targetURL(repo, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/repos/" + url.PathEscape(repo) + "/targets/" + strings.Join(segs, "/")
}

func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Offers returns what an agent's device should work on: its open deployments of
// rollouts that have released its ring (creating those of a device that joined late),
// marking new ones offered.
func (e *Engine) Offers(ctx context.Context, ag *Agent) (Asset, string, []agentapi.Offer, error) {
	a, err := e.assetOfAgent(ctx, ag)
	if err != nil {
		return Asset{}, "", nil, fmt.Errorf("rollout: offers: %w", err)
	}
	s, err := e.snapshot(ctx)
	if err != nil {
		return a, "", nil, fmt.Errorf("rollout: offers: %w", err)
	}
	ring := e.ringOf(a, s.rings)
	offers := []agentapi.Offer{}
	if ring == "" {
		return a, "", offers, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	for _, r := range s.rollouts {
		if !r.RingReleased(ring) {
			continue
		}
		d, err := e.deploymentFor(ctx, r, a, ring, now)
		if err != nil {
			return a, ring, nil, fmt.Errorf("rollout: offers: %w", err)
		}
		if !d.State.Open() {
			continue
		}
		if d.AgentID == "" {
			d.AgentID = ag.ID
		}
		if d.State == DepScheduled {
			if d, err = e.moveDeploymentLocked(ctx, d.ID, "agent:"+ag.ID, func(d *Deployment, now time.Time) error {
				d.AgentID = ag.ID
				d.to(DepOffered, now)
				return nil
			}); err != nil {
				return a, ring, nil, fmt.Errorf("rollout: offers: %w", err)
			}
		}
		acc := e.access(s, r, ring, a.Segment, now)
		rel := r.Release
		o := agentapi.Offer{
			ID: d.ID, RolloutID: r.ID, Repo: rel.Repo, State: string(d.State), Attempt: d.Attempt, MaxAttempts: d.MaxAttempts,
			Release: agentapi.OfferRelease{ID: rel.ID, Name: rel.Name, Version: rel.Version, Severity: string(rel.Severity),
				CVEs: nonNil(rel.CVEs), KnownExploited: rel.KnownExploited},
			DownloadAllowed: acc.download, InstallAllowed: acc.install, Deadline: d.Deadline.UTC(),
			Window: agentapi.OfferWindow{Open: acc.opening.Open, OpensAt: acc.opening.Start.UTC(), ClosesAt: acc.opening.End.UTC()},
		}
		if !acc.download || !acc.install {
			o.RetryAfterSeconds = seconds(acc.retryAfter)
		}
		for _, p := range rel.Targets {
			o.Targets = append(o.Targets, agentapi.OfferTarget{Path: p, URL: targetURL(rel.Repo, p)})
		}
		offers = append(offers, o)
	}
	return a, ring, offers, nil
}

// ownDeployment loads deployment id if it belongs to the agent's device.
func (e *Engine) ownDeployment(ctx context.Context, ag *Agent, id int64) (*Deployment, Asset, error) {
	a, err := e.assetOfAgent(ctx, ag)
	if err != nil {
		return nil, a, err
	}
	d, err := getDeployment(ctx, e.db, id)
	if err != nil {
		return nil, a, err
	}
	if d.AssetID != a.ID {
		return nil, a, fmt.Errorf("deployment %d: %w", id, ErrNotFound) // not this agent's: do not say it exists
	}
	return d, a, nil
}

// Progress records an agent's progress report: downloading, downloaded or installing.
// Installing is refused (ErrState, with the wait) when the device may not install now.
func (e *Engine) Progress(ctx context.Context, ag *Agent, id int64, state DeploymentState, detail string) (*Deployment, time.Duration, error) {
	if state != DepDownloading && state != DepDownloaded && state != DepInstalling {
		return nil, 0, fmt.Errorf("rollout: progress: %w: state must be downloading, downloaded or installing, got %q", ErrInvalid, state)
	}
	d, a, err := e.ownDeployment(ctx, ag, id)
	if err != nil {
		return nil, 0, fmt.Errorf("rollout: progress: %w", err)
	}
	if !d.State.Open() {
		return nil, 0, fmt.Errorf("rollout: progress: deployment %d: %w (it is %s)", id, ErrState, d.State)
	}
	if state == DepInstalling {
		s, err := e.snapshot(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("rollout: progress: %w", err)
		}
		var r *Rollout
		for _, x := range s.rollouts {
			if x.ID == d.RolloutID {
				r = x
			}
		}
		if r == nil {
			return nil, e.cfg.Recheck, fmt.Errorf("rollout: progress: deployment %d: %w: its rollout is not released", id, ErrState)
		}
		if acc := e.access(s, r, e.ringOf(a, s.rings), a.Segment, e.clock.Now()); !acc.install {
			return nil, acc.retryAfter, fmt.Errorf("rollout: progress: deployment %d: %w: installing is not allowed now: %s", id, ErrState, acc.reason)
		}
	}
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// The serving gate records downloading and downloaded as the bytes go; the agent's
	// own report of the same state is then no new event (it was recorded twice).
	if cur, err := getDeployment(ctx, e.db, id); err == nil && cur.State == state {
		return cur, 0, nil
	}
	d, err = e.moveDeploymentLocked(ctx, id, "agent:"+ag.ID, func(d *Deployment, now time.Time) error {
		if !d.State.Open() {
			return fmt.Errorf("deployment %d: %w (it is %s)", id, ErrState, d.State)
		}
		d.Detail = detail
		d.to(state, now)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("rollout: progress: %w", err)
	}
	return d, 0, nil
}

// MaxLogTail is how much of an installer's log tail is kept (the end of it).
const MaxLogTail = 64 << 10

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}

// Outcome records an attempt's result. A failure with attempts left is retried after
// the back-off.
func (e *Engine) Outcome(ctx context.Context, ag *Agent, id int64, o agentapi.OutcomeRequest) (*Deployment, error) {
	if o.Status == agentapi.OutcomePostponed {
		return e.postponed(ctx, ag, id, o)
	}
	status := DeploymentState(o.Status)
	if status != DepSucceeded && status != DepFailed && status != DepSkipped {
		return nil, fmt.Errorf("rollout: outcome: %w: status must be succeeded, failed, skipped or postponed, got %q", ErrInvalid, o.Status)
	}
	if _, _, err := e.ownDeployment(ctx, ag, id); err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := backoff{e.cfg.RetryBase, e.cfg.RetryMax}
	d, err := e.moveDeploymentLocked(ctx, id, "agent:"+ag.ID, func(d *Deployment, now time.Time) error {
		if !d.State.Open() {
			return fmt.Errorf("deployment %d: %w (it is %s)", id, ErrState, d.State)
		}
		d.ExitCode, d.LogTail, d.Detail = o.ExitCode, tail(o.LogTail, MaxLogTail), tail(withRestorePoint(o), 1000)
		if status == DepFailed {
			d.fail(b, now)
			return nil
		}
		d.to(status, now)
		d.ResultAt = now
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	return d, nil
}
