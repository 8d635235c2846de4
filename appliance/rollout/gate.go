package rollout

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Gate is the serving gate: it decides, for each target request, whether the device
// asking may have the target now, and counts complete downloads as delivered. The
// appliance puts it in front of the cache. It is safe for concurrent use.
type Gate struct{ e *Engine }

// Gate returns the engine's serving gate.
func (e *Engine) Gate() *Gate { return &Gate{e} }

// Request is a target request as the gate sees it.
type Request struct {
	Repo string
	Path string
	// Addr is the connection's source address (never a header).
	Addr netip.Addr
	// Authorization is the request's Authorization header ("Bearer <credential>" from
	// agents), empty for agentless devices.
	Authorization string
	// TLS is the connection's TLS state (nil over plain http): over the agents' TLS
	// listener an agent's (or child appliance's) client certificate must name the
	// agent its credential names, as on the agent API.
	TLS *tls.ConnectionState
}

// Decision is the gate's answer. A refusal has Status 503 (not now; RetryAfter is the
// next opening) or 403 (a device in no ring, a target no approved rollout releases to
// it), or 401 (a bad agent credential).
type Decision struct {
	Allow      bool
	Status     int
	RetryAfter time.Duration
	Reason     string
	// AssetID and DeploymentID identify what an allowed download counts toward.
	AssetID      string
	DeploymentID int64
	// Child is the agent id of a downstream appliance allowed a target ("" for
	// devices): the wiring counts the bytes it is sent per child.
	Child string
}

func refuse(status int, retry time.Duration, format string, args ...any) Decision {
	return Decision{Status: status, RetryAfter: retry, Reason: fmt.Sprintf(format, args...)}
}

// Decide decides one request: requester → asset (agent identity first, else source
// address via the inventory) → ring → the rollouts that release the target → serve if
// one of them has released the ring and the device's window is open (or the stage
// pre-stages, or the rollout is an approved emergency) and the stage's concurrent
// download limit allows; else 503 with Retry-After = the next opening.
func (g *Gate) Decide(ctx context.Context, req Request) Decision {
	e := g.e
	d := g.decide(ctx, req)
	e.met.gate.WithLabelValues(decisionLabel(d)).Inc()
	if !d.Allow && d.Status >= 500 && d.Status != http.StatusServiceUnavailable {
		e.log.Warn("rollout: gate", "repo", req.Repo, "path", req.Path, "addr", req.Addr, "err", d.Reason)
	}
	return d
}

func decisionLabel(d Decision) string {
	switch {
	case d.Allow:
		return "serve"
	case d.Status == http.StatusServiceUnavailable:
		return "later"
	case d.Status == http.StatusUnauthorized:
		return "unauthenticated"
	case d.Status == http.StatusForbidden:
		return "refused"
	}
	return "error"
}

func (g *Gate) decide(ctx context.Context, req Request) Decision {
	e := g.e
	asset, ag, ok, err := g.identify(ctx, req)
	if errors.Is(err, ErrUnauthenticated) && strings.Contains(err.Error(), "client certificate") {
		return refuse(http.StatusUnauthorized, 0, "%v", err)
	}
	if errors.Is(err, ErrUnauthenticated) {
		return refuse(http.StatusUnauthorized, 0, "unknown or revoked agent credential; enrol again")
	}
	if err != nil {
		return refuse(http.StatusInternalServerError, e.cfg.Recheck, "cannot identify the device: %v", err)
	}
	if ag != nil && ag.Downstream() {
		return g.decideDownstream(ctx, req, ag)
	}
	if !ok {
		return refuse(http.StatusForbidden, 0, "device %s is not in the inventory, so it is in no ring", req.Addr)
	}
	s, err := e.snapshot(ctx)
	if err != nil {
		return refuse(http.StatusInternalServerError, e.cfg.Recheck, "rollout state unavailable: %v", err)
	}
	ring := e.ringOf(asset, s.rings)
	if ring == "" {
		return refuse(http.StatusForbidden, 0, "device %s is in no ring", asset.Name)
	}
	rs := s.byTarget[targetKey{req.Repo, req.Path}]
	if len(rs) == 0 {
		return refuse(http.StatusForbidden, 0, "held: %s/%s is in no approved rollout", req.Repo, req.Path)
	}
	now := e.clock.Now()
	best := Decision{Status: http.StatusForbidden}
	for _, r := range rs {
		a := e.access(s, r, ring, asset.Segment, now)
		if a.download {
			d := g.admit(ctx, r, asset, ring, now)
			if d.Allow {
				d.AssetID = asset.ID
				return d
			}
			a.status, a.retryAfter, a.reason = d.Status, d.RetryAfter, d.Reason
		}
		cand := Decision{Status: a.status, RetryAfter: a.retryAfter, Reason: a.reason}
		if better(cand, best) {
			best = cand
		}
	}
	if best.Reason == "" {
		best.Reason = fmt.Sprintf("held: %s/%s is not released to ring %s", req.Repo, req.Path, ring)
	}
	return best
}

// better prefers "later" to "never", then the sooner retry.
func better(a, b Decision) bool {
	if a.Status != b.Status {
		return a.Status == http.StatusServiceUnavailable
	}
	return b.RetryAfter == 0 || (a.RetryAfter > 0 && a.RetryAfter < b.RetryAfter)
}

// identify maps the requester to an asset: the agent credential if one is presented
// (the agent is returned too), else the source address through the inventory.
func (g *Gate) identify(ctx context.Context, req Request) (Asset, *Agent, bool, error) {
	e := g.e
	if req.Authorization != "" {
		cred, ok := strings.CutPrefix(req.Authorization, "Bearer ")
		if !ok {
			return Asset{}, nil, false, ErrUnauthenticated
		}
		ag, err := e.Authenticate(ctx, strings.TrimSpace(cred))
		if err == nil {
			err = e.checkClientCert(req.TLS, ag, false)
		}
		if err != nil {
			return Asset{}, nil, false, err
		}
		a, err := e.assetOfAgent(ctx, ag)
		return a, ag, err == nil, err
	}
	if !req.Addr.IsValid() {
		return Asset{}, nil, false, nil
	}
	a, ok, err := e.inventory().ByAddr(ctx, req.Addr.Unmap())
	if err != nil {
		return Asset{}, nil, false, fmt.Errorf("inventory: %w", err)
	}
	if ok && a.AgentID != "" {
		// An agent's device asking without its credential: still the agent's ring.
		ag, err := scanAgent(e.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM rollout_agents WHERE id = ?`, a.AgentID))
		if err == nil && ag.RevokedAt.IsZero() {
			a = withAgent(a, ag)
		}
	}
	return a, nil, ok, nil
}

// admit applies the stage's concurrency limit and marks the device's deployment
// downloading (creating it if the device joined the ring after the stage started).
func (g *Gate) admit(ctx context.Context, r *Rollout, asset Asset, ring string, now time.Time) Decision {
	e := g.e
	e.mu.Lock()
	defer e.mu.Unlock()
	dep, err := e.deploymentFor(ctx, r, asset, ring, now)
	if err != nil {
		return refuse(http.StatusInternalServerError, e.cfg.Recheck, "deployment: %v", err)
	}
	if dep.State == DepCancelled {
		return refuse(http.StatusForbidden, 0, "the deployment of rollout %d to this device was cancelled", r.ID)
	}
	if dep.State == DepDownloading || dep.State == DepDownloaded || dep.State == DepInstalling || dep.State.Done() || dep.State == DepFailed {
		// Resuming, re-downloading after a reported result: no new slot is taken.
		return Decision{Allow: true, DeploymentID: dep.ID}
	}
	st := r.Stages[r.StageOf(ring)]
	if st.MaxConcurrent > 0 {
		var n int
		err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollout_deployments WHERE rollout_id = ? AND ring = ? AND state = 'downloading' AND state_at > ?`,
			r.ID, ring, ts(now.Add(-e.cfg.DownloadTimeout))).Scan(&n)
		if err != nil {
			return refuse(http.StatusInternalServerError, e.cfg.Recheck, "count downloads: %v", err)
		}
		if n >= st.MaxConcurrent {
			return refuse(http.StatusServiceUnavailable, min(time.Minute, e.cfg.Recheck), "%d downloads in progress in ring %s (limit %d)", n, ring, st.MaxConcurrent)
		}
	}
	_, err = e.moveDeploymentLocked(ctx, dep.ID, actorOf(asset), func(d *Deployment, now time.Time) error {
		d.to(DepDownloading, now)
		return nil
	})
	if err != nil {
		return refuse(http.StatusInternalServerError, e.cfg.Recheck, "deployment: %v", err)
	}
	return Decision{Allow: true, DeploymentID: dep.ID}
}

func actorOf(a Asset) string {
	if a.AgentID != "" {
		return "agent:" + a.AgentID
	}
	return "device:" + a.ID
}

// deploymentFor returns the device's deployment of r, creating it when the device
// joined a released ring late. The caller holds e.mu.
func (e *Engine) deploymentFor(ctx context.Context, r *Rollout, a Asset, ring string, now time.Time) (*Deployment, error) {
	ds, err := listDeployments(ctx, e.db, DeploymentFilter{RolloutID: r.ID, AssetID: a.ID, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(ds) == 1 {
		d := ds[0]
		if d.Ring != ring && d.State.Open() {
			d.Ring = ring // the device moved rings; it counts where it is now
			if err := saveDeployment(ctx, e.db, d); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	d := e.newDeployment(r, a, ring, now)
	if d.ID, err = e.nextID(ctx, "rollout_deployments"); err != nil {
		return nil, err
	}
	ev := &Event{Time: now, Actor: "system", Action: "deployment." + string(d.State), Object: "deployment/" + strconv.FormatInt(d.ID, 10),
		RolloutID: r.ID, DeploymentID: d.ID, Details: map[string]string{"asset": a.ID, "ring": ring, "why": "the device joined a released ring"}}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error { return insertDeployment(ctx, tx, d) })
	return d, err
}

// Admit decides req like Decide. When the request is allowed for a deployment, done
// is not nil: call it once the response is sent, with whether it carried the target
// through its end (a whole body, or the last range of a resumed download); a complete
// download counts toward the deployment's delivery (agentless devices have nothing
// else to report it).
func (g *Gate) Admit(ctx context.Context, req Request) (d Decision, done func(complete bool)) {
	d = g.Decide(ctx, req)
	if !d.Allow || d.DeploymentID == 0 {
		return d, nil
	}
	return d, func(complete bool) {
		if !complete {
			return
		}
		if err := g.e.delivered(context.WithoutCancel(ctx), d.DeploymentID, req.Path); err != nil {
			g.e.log.Warn("rollout: record a delivery", "deployment", d.DeploymentID, "path", req.Path, "err", err)
		}
	}
}

// delivered records that path of deployment id was downloaded completely; once every
// target of the release is, the deployment is downloaded (delivered).
func (e *Engine) delivered(ctx context.Context, id int64, path string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := getDeployment(ctx, e.db, id)
	if err != nil {
		return err
	}
	if slices.Contains(d.Delivered, path) || !(d.State == DepScheduled || d.State == DepOffered || d.State == DepDownloading) {
		return nil
	}
	rel, err := getRelease(ctx, e.db, d.ReleaseID)
	if err != nil {
		return err
	}
	d.Delivered = append(d.Delivered, path)
	all := true
	for _, t := range rel.Targets {
		if !slices.Contains(d.Delivered, t) {
			all = false
		}
	}
	if !all {
		return saveDeployment(ctx, e.db, d)
	}
	_, err = e.moveDeploymentLocked(ctx, id, "device:"+d.AssetID, func(dd *Deployment, now time.Time) error {
		dd.Delivered = d.Delivered
		dd.to(DepDownloaded, now)
		return nil
	})
	return err
}
