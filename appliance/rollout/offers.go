package rollout

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Offer is one deployment as an agent sees it (see README.md, the agent API).
type Offer struct {
	ID                int64           `json:"id"`
	RolloutID         int64           `json:"rollout_id"`
	Release           OfferRelease    `json:"release"`
	Repo              string          `json:"repo"`
	Targets           []OfferTarget   `json:"targets"`
	State             DeploymentState `json:"state"`
	Attempt           int             `json:"attempt"`
	MaxAttempts       int             `json:"max_attempts"`
	DownloadAllowed   bool            `json:"download_allowed"`
	InstallAllowed    bool            `json:"install_allowed"`
	Window            Opening         `json:"window"`
	Deadline          time.Time       `json:"deadline"`
	RetryAfterSeconds int64           `json:"retry_after_seconds"`
}

// OfferRelease is the part of a release an agent needs.
type OfferRelease struct {
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	Version        string   `json:"version,omitempty"`
	Severity       Severity `json:"severity"`
	CVEs           []string `json:"cves"`
	KnownExploited bool     `json:"known_exploited"`
}

// OfferTarget is a target to download: its TUF path and the URL path to get it at.
type OfferTarget struct {
	Path string `json:"path"`
	URL  string `json:"url"`
}

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
func (e *Engine) Offers(ctx context.Context, ag *Agent) (Asset, string, []Offer, error) {
	a, err := e.assetOfAgent(ctx, ag)
	if err != nil {
		return Asset{}, "", nil, fmt.Errorf("rollout: offers: %w", err)
	}
	s, err := e.snapshot(ctx)
	if err != nil {
		return a, "", nil, fmt.Errorf("rollout: offers: %w", err)
	}
	ring := e.ringOf(a, s.rings)
	offers := []Offer{}
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
		o := Offer{
			ID: d.ID, RolloutID: r.ID, Repo: rel.Repo, State: d.State, Attempt: d.Attempt, MaxAttempts: d.MaxAttempts,
			Release:         OfferRelease{ID: rel.ID, Name: rel.Name, Version: rel.Version, Severity: rel.Severity, CVEs: nonNil(rel.CVEs), KnownExploited: rel.KnownExploited},
			DownloadAllowed: acc.download, InstallAllowed: acc.install, Deadline: d.Deadline.UTC(),
			Window: Opening{Open: acc.opening.Open, Start: acc.opening.Start.UTC(), End: acc.opening.End.UTC()},
		}
		if !acc.download || !acc.install {
			o.RetryAfterSeconds = seconds(acc.retryAfter)
		}
		for _, p := range rel.Targets {
			o.Targets = append(o.Targets, OfferTarget{Path: p, URL: targetURL(rel.Repo, p)})
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

// Outcome is an agent's final report on one attempt.
type Outcome struct {
	Status   DeploymentState `json:"status"` // succeeded, failed or skipped
	ExitCode *int            `json:"exit_code"`
	LogTail  string          `json:"log_tail"`
	Detail   string          `json:"detail"`
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
func (e *Engine) Outcome(ctx context.Context, ag *Agent, id int64, o Outcome) (*Deployment, error) {
	if o.Status != DepSucceeded && o.Status != DepFailed && o.Status != DepSkipped {
		return nil, fmt.Errorf("rollout: outcome: %w: status must be succeeded, failed or skipped, got %q", ErrInvalid, o.Status)
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
		d.ExitCode, d.LogTail, d.Detail = o.ExitCode, tail(o.LogTail, MaxLogTail), tail(o.Detail, 1000)
		if o.Status == DepFailed {
			d.fail(b, now)
			return nil
		}
		d.to(o.Status, now)
		d.ResultAt = now
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	return d, nil
}
