package rollout

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// allAssets is the inventory's assets plus the enrolled agents it does not know.
func (e *Engine) allAssets(ctx context.Context) ([]Asset, error) {
	inv, err := e.inventory().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	agents, err := listAgents(ctx, e.db)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Agent{}
	for _, ag := range agents {
		if ag.RevokedAt.IsZero() {
			byID[ag.ID] = ag
		}
	}
	known := map[string]bool{}
	for i, a := range inv {
		if ag := byID[a.AgentID]; ag != nil {
			inv[i] = withAgent(a, ag)
			known[ag.ID] = true
		}
	}
	for _, ag := range agents {
		if known[ag.ID] || !ag.RevokedAt.IsZero() {
			continue
		}
		if a, ok, err := e.inventory().ByAgent(ctx, ag.ID); err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		} else if ok {
			if !slices.ContainsFunc(inv, func(x Asset) bool { return x.ID == a.ID }) {
				inv = append(inv, withAgent(a, ag))
			}
			continue
		}
		inv = append(inv, e.agentOwnAsset(ag))
	}
	return inv, nil
}

// withAgent completes the inventory's asset of an agent with what its enrolment token
// said: the token's ring unless an admin assigned one, and the token's tags.
func withAgent(a Asset, ag *Agent) Asset {
	if a.Ring == "" {
		a.Ring = ag.Ring
	}
	for _, t := range ag.Tags {
		if !slices.Contains(a.Tags, t) {
			a.Tags = append(slices.Clone(a.Tags), t)
		}
	}
	a.AgentID = ag.ID
	return a
}

// agentOwnAsset is the asset an agent the inventory does not know stands for.
func (e *Engine) agentOwnAsset(ag *Agent) Asset {
	a := Asset{ID: "agent:" + ag.ID, Name: ag.Hostname, Ring: ag.Ring, Tags: ag.Tags, AgentID: ag.ID, FirstSeen: ag.EnrolledAt, Type: "workstation"}
	if ag.LastAddr.IsValid() {
		a.Segment = e.cfg.Segment(ag.LastAddr)
	}
	return a
}

// ensureDeployments creates the missing deployments of rollout r for every asset in
// the ring of stage idx (every stage when idx < 0). A device that already reports the
// release's version is skipped at once.
func (e *Engine) ensureDeployments(ctx context.Context, tx *sql.Tx, r *Rollout, assets []Asset, now time.Time, idx int) ([]*Event, error) {
	rings, err := listRings(ctx, tx)
	if err != nil {
		return nil, err
	}
	ids, err := queryAll(ctx, tx, column[string], `SELECT asset_id FROM rollout_deployments WHERE rollout_id = ?`, r.ID)
	if err != nil {
		return nil, err
	}
	existing := map[string]bool{}
	for _, id := range ids {
		existing[id] = true
	}
	perRing := map[string]int{}
	skipped := 0
	for _, a := range assets {
		if existing[a.ID] {
			continue
		}
		ring := e.ringOf(a, rings)
		si := r.StageOf(ring)
		if si < 0 || (idx >= 0 && si != idx) {
			continue
		}
		d := e.newDeployment(r, a, ring, now)
		if err := insertDeployment(ctx, tx, d); err != nil {
			return nil, err
		}
		existing[a.ID] = true
		perRing[ring]++
		if d.State == DepSkipped {
			skipped++
		}
	}
	if len(perRing) == 0 {
		return nil, nil
	}
	var parts []string
	total := 0
	for _, s := range r.Stages {
		if n := perRing[s.Ring]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s.Ring, n))
			total += n
		}
	}
	ev := rolloutEvent(r, "system", "deployments.create", map[string]string{
		"count": strconv.Itoa(total), "rings": strings.Join(parts, " "), "skipped": strconv.Itoa(skipped)})
	ev.Time = now
	return []*Event{ev}, nil
}

func (e *Engine) newDeployment(r *Rollout, a Asset, ring string, now time.Time) *Deployment {
	d := &Deployment{
		RolloutID: r.ID, ReleaseID: r.ReleaseID, AssetID: a.ID, AssetName: a.Name, AgentID: a.AgentID, Ring: ring,
		Attempt: 1, MaxAttempts: e.cfg.MaxAttempts, Since: a.FirstSeen, Deadline: e.cfg.Policy.Deadline(r.Release, a.FirstSeen),
	}
	d.to(DepScheduled, now)
	if r.Release.Version != "" && a.Firmware == r.Release.Version {
		d.to(DepSkipped, now)
		d.ResultAt, d.Detail = now, "the device already reports version "+a.Firmware
	}
	return d
}

// cancelDeployments cancels every open deployment of r (and failed ones waiting for a
// retry).
func (e *Engine) cancelDeployments(ctx context.Context, tx *sql.Tx, r *Rollout, now time.Time) ([]*Event, error) {
	ds, err := listDeployments(ctx, tx, DeploymentFilter{RolloutID: r.ID, States: openAndFailed, Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, d := range ds {
		if d.State == DepFailed && d.RetryAt.IsZero() {
			continue // a final failure stays on record as such
		}
		d.to(DepCancelled, now)
		d.RetryAt = time.Time{}
		d.Detail = "rollout " + string(r.State) + ": " + r.Reason
		if err := saveDeployment(ctx, tx, d); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	ev := rolloutEvent(r, "system", "deployments.cancel", map[string]string{"count": strconv.Itoa(n)})
	ev.Time = now
	return []*Event{ev}, nil
}

// Deployments lists deployments matching f.
func (e *Engine) Deployments(ctx context.Context, f DeploymentFilter) ([]*Deployment, error) {
	ds, err := listDeployments(ctx, e.db, f)
	if err != nil {
		return nil, fmt.Errorf("rollout: deployments: %w", err)
	}
	return ds, nil
}

// Deployment returns one deployment.
func (e *Engine) Deployment(ctx context.Context, id int64) (*Deployment, error) {
	d, err := getDeployment(ctx, e.db, id)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	return d, nil
}

// moveDeployment changes deployment id under the engine's lock: fn changes it in memory
// (an error refuses), then the change is recorded and saved. The caller holds e.mu.
func (e *Engine) moveDeploymentLocked(ctx context.Context, id int64, actor string, fn func(d *Deployment, now time.Time) error) (*Deployment, error) {
	d, err := getDeployment(ctx, e.db, id)
	if err != nil {
		return nil, err
	}
	before := d.State
	now := e.clock.Now()
	if err := fn(d, now); err != nil {
		return nil, err
	}
	details := map[string]string{"from": string(before), "to": string(d.State), "asset": d.AssetID, "attempt": strconv.Itoa(d.Attempt)}
	if d.ExitCode != nil && (d.State == DepSucceeded || d.State == DepFailed) {
		details["exit_code"] = strconv.Itoa(*d.ExitCode)
	}
	if !d.RetryAt.IsZero() {
		details["retry_at"] = ts(d.RetryAt)
	}
	if d.Detail != "" && !d.State.Open() {
		details["detail"] = d.Detail
	}
	ev := &Event{Time: now, Actor: actor, Action: "deployment." + string(d.State), Object: "deployment/" + strconv.FormatInt(d.ID, 10),
		RolloutID: d.RolloutID, DeploymentID: d.ID, Details: details}
	if err := e.commit(ctx, ev, func(tx *sql.Tx) error { return saveDeployment(ctx, tx, d) }); err != nil {
		return nil, err
	}
	return d, nil
}

// ObserveFirmware is called by the inventory when a scan (or an agent) reads a
// device's version: the device's open (or failed) deployments of releases with that
// version succeed. It returns how many did.
func (e *Engine) ObserveFirmware(ctx context.Context, assetID, version string) (int, error) {
	if version == "" {
		return 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ds, err := listDeployments(ctx, e.db, DeploymentFilter{AssetID: assetID, States: openAndFailed})
	if err != nil {
		return 0, fmt.Errorf("rollout: observe firmware: %w", err)
	}
	n := 0
	for _, d := range ds {
		rel, err := getRelease(ctx, e.db, d.ReleaseID)
		if err != nil {
			return n, fmt.Errorf("rollout: observe firmware: %w", err)
		}
		if rel.Version != version {
			continue
		}
		_, err = e.moveDeploymentLocked(ctx, d.ID, "device:"+assetID, func(d *Deployment, now time.Time) error {
			d.to(DepSucceeded, now)
			d.ResultAt, d.RetryAt, d.Detail = now, time.Time{}, "a scan read version "+version
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("rollout: observe firmware: %w", err)
		}
		n++
	}
	return n, nil
}
