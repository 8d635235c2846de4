package rollout

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/agentapi"
)

// postponed records an agent's postponement: a pre-check failed (battery, free space,
// the check command...), so the device will try again later within its window. The
// deployment stays open in its state, its detail says why, and the event
// deployment.postponed keeps the checks with their values. It is not an attempt.
func (e *Engine) postponed(ctx context.Context, ag *Agent, id int64, o agentapi.OutcomeRequest) (*Deployment, error) {
	if _, _, err := e.ownDeployment(ctx, ag, id); err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := getDeployment(ctx, e.db, id)
	if err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	if !d.State.Open() {
		return nil, fmt.Errorf("rollout: outcome: deployment %d: %w (it is %s)", id, ErrState, d.State)
	}
	d.Detail = tail(o.Detail, 1000)
	details := map[string]string{"state": string(d.State), "asset": d.AssetID, "attempt": strconv.Itoa(d.Attempt), "detail": d.Detail}
	for i, c := range o.Checks {
		if i >= 8 {
			break
		}
		details["check."+clip(c.Name, 32)] = clip(checkText(c), 200)
	}
	ev := &Event{Time: e.clock.Now(), Actor: "agent:" + ag.ID, Action: "deployment.postponed",
		Object: "deployment/" + strconv.FormatInt(d.ID, 10), RolloutID: d.RolloutID, DeploymentID: d.ID, Details: details}
	if err := e.commit(ctx, ev, func(tx *sql.Tx) error { return saveDeployment(ctx, tx, d) }); err != nil {
		return nil, fmt.Errorf("rollout: outcome: %w", err)
	}
	return d, nil
}

// checkText is "ok: AC, battery 80% (need AC or battery >= 40%)".
func checkText(c agentapi.Check) string {
	s := "failed: "
	if c.OK {
		s = "ok: "
	}
	return s + c.Value + " (need " + c.Need + ")"
}

// withRestorePoint is an outcome's detail with what the restore point step did.
func withRestorePoint(o agentapi.OutcomeRequest) string {
	if o.RestorePoint == nil || strings.HasPrefix(o.Detail, agentapi.DetailRestorePoint) {
		return o.Detail
	}
	s := "restore point " + o.RestorePoint.Status
	if o.RestorePoint.Method != "" {
		s += " (" + o.RestorePoint.Method + ")"
	}
	if o.Detail == "" {
		return s
	}
	return o.Detail + "; " + s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
