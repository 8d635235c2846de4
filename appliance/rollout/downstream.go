package rollout

import (
	"context"
	"net/http"
	"slices"
)

// DownstreamTag on an enrolment token makes the agents enrolled with it downstream
// appliances (child Patchgates) rather than devices; appliance/fleet uses the same
// name.
const DownstreamTag = "patchgate:downstream"

// Downstream reports whether the agent is a downstream appliance (enrolled with a
// token tagged DownstreamTag).
func (a *Agent) Downstream() bool { return slices.Contains(a.Tags, DownstreamTag) }

// decideDownstream admits a downstream appliance to any target of an approved,
// scheduled, running, paused or recently completed rollout, whatever ring or window:
// the child runs its own rings and windows, and prefetches what any of them will need.
// It creates no deployment (the child's devices are the child's) and takes no stage's
// download slot. Targets in no such rollout are held (403) as for devices.
func (g *Gate) decideDownstream(ctx context.Context, req Request, ag *Agent) Decision {
	e := g.e
	s, err := e.snapshot(ctx)
	if err != nil {
		return refuse(http.StatusInternalServerError, e.cfg.Recheck, "rollout state unavailable: %v", err)
	}
	if len(s.byTarget[targetKey{req.Repo, req.Path}]) == 0 {
		return refuse(http.StatusForbidden, 0, "held: %s/%s is in no approved rollout (downstream appliance %s)", req.Repo, req.Path, ag.ID)
	}
	return Decision{Allow: true, AssetID: "agent:" + ag.ID, Child: ag.ID}
}
