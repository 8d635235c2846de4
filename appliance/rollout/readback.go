package rollout

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// ReadBack is a deployment result decided outside the engine for an agentless device:
// the vendor hosts' read-back (appliance/vendorhost) of the firmware version discovery
// read after the device fetched Repo/Target.
type ReadBack struct {
	AssetID string
	Repo    string
	Target  string
	// State is DepSucceeded (the version read is the release's), DepFailed (another
	// version, past the grace) or "" (pending: the reading decides nothing yet, e.g. a
	// string that is no version; Detail says why and shows it).
	State  DeploymentState
	Detail string
}

// ExternalOutcome applies a read-back to the asset's deployments of releases that list
// Repo/Target: succeeded moves open and failed ones, failed open ones (retried after the
// back-off while attempts are left), pending records Detail on open ones without moving
// them. Each change is an event (deployment.succeeded|failed|pending) by actor, audited
// like every other deployment result. It returns how many deployments changed.
func (e *Engine) ExternalOutcome(ctx context.Context, actor string, x ReadBack) (int, error) {
	if x.State != "" && x.State != DepSucceeded && x.State != DepFailed {
		return 0, fmt.Errorf("rollout: external outcome: %w: state must be succeeded, failed or empty, got %q", ErrInvalid, x.State)
	}
	if x.AssetID == "" || x.Repo == "" || x.Target == "" {
		return 0, fmt.Errorf("rollout: external outcome: %w: asset, repo and target are required", ErrInvalid)
	}
	x.Detail = tail(x.Detail, 1000)
	states := []DeploymentState{DepScheduled, DepOffered, DepDownloading, DepDownloaded, DepInstalling}
	if x.State == DepSucceeded {
		states = openAndFailed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ds, err := listDeployments(ctx, e.db, DeploymentFilter{AssetID: x.AssetID, States: states})
	if err != nil {
		return 0, fmt.Errorf("rollout: external outcome: %w", err)
	}
	b := backoff{e.cfg.RetryBase, e.cfg.RetryMax}
	n := 0
	for _, d := range ds {
		rel, err := getRelease(ctx, e.db, d.ReleaseID)
		if err != nil {
			return n, fmt.Errorf("rollout: external outcome: %w", err)
		}
		if rel.Repo != x.Repo || !slices.Contains(rel.Targets, x.Target) {
			continue
		}
		if x.State == "" {
			if d.Detail == x.Detail {
				continue
			}
			if err := e.pendingLocked(ctx, d, actor, x.Detail); err != nil {
				return n, fmt.Errorf("rollout: external outcome: %w", err)
			}
			n++
			continue
		}
		_, err = e.moveDeploymentLocked(ctx, d.ID, actor, func(d *Deployment, now time.Time) error {
			d.Detail = x.Detail
			if x.State == DepFailed {
				d.fail(b, now)
				return nil
			}
			d.to(DepSucceeded, now)
			d.ResultAt, d.RetryAt = now, time.Time{}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("rollout: external outcome: %w", err)
		}
		n++
	}
	return n, nil
}

// pendingLocked records detail on an open deployment without moving it (event
// deployment.pending). The caller holds e.mu.
func (e *Engine) pendingLocked(ctx context.Context, d *Deployment, actor, detail string) error {
	d.Detail = detail
	ev := &Event{Time: e.clock.Now(), Actor: actor, Action: "deployment.pending", Object: "deployment/" + strconv.FormatInt(d.ID, 10),
		RolloutID: d.RolloutID, DeploymentID: d.ID,
		Details: map[string]string{"state": string(d.State), "asset": d.AssetID, "detail": detail}}
	return e.commit(ctx, ev, func(tx *sql.Tx) error { return saveDeployment(ctx, tx, d) })
}
