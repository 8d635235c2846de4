package appliance

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/forward"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// buildSIEM starts forwarding the audit trail to the siem section's targets (none set:
// nothing), each from its cursor under STATE/siem, puts the backlog on the status page,
// and records the alerts that are rollout state (overdue and silent devices) in the
// trail so they are forwarded too.
func (s *System) buildSIEM(context.Context) error {
	c := s.cfg.SIEM
	if !c.Enabled() || s.audit == nil {
		return nil
	}
	host, _ := os.Hostname()
	targets, err := forward.Targets(c, host)
	if err != nil {
		return err
	}
	dir := s.cfg.State.Path("siem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("siem: %w", err)
	}
	svc, err := forward.New(forward.Options{Dir: dir, Source: auditSource{s.audit}, Rate: c.Rate, Batch: c.Batch,
		Retry: c.Retry.D(), Poll: c.Poll.D(), Clock: s.clock, Logger: s.log.With("svc", "siem"), Registerer: s.registry}, targets...)
	if err != nil {
		return err
	}
	s.services = append(s.services, svc)
	s.AddPanel(siemPanel(svc))
	if s.rollout != nil {
		s.services = append(s.services, &forward.AlertWatcher{Every: 5 * time.Minute, Trail: s.audit, Clock: s.clock,
			Logger: s.log.With("svc", "siem"), Check: rolloutAlerts{s.rollout, c.SilentAfter.D(), s.clock.Now}.check})
	}
	return nil
}

// auditSource is forward.Source over the trail's database copy.
type auditSource struct{ l *audit.Log }

func (a auditSource) After(ctx context.Context, seq uint64, limit int) ([]audit.Record, error) {
	return a.l.Records(ctx, audit.Query{After: seq, Limit: limit})
}

func (a auditSource) Last() uint64 { return a.l.Stats().Records }

// rolloutAlerts reads the alert conditions from the rollout engine: devices past a
// release's deadline (one alert per device and release) and agents not seen for
// silent (one per silence, told apart by the last check-in); names and addresses only.
type rolloutAlerts struct {
	e      *rollout.Engine
	silent time.Duration // 0: no silent alerts
	now    func() time.Time
}

func (r rolloutAlerts) check(ctx context.Context) ([]forward.Condition, error) {
	_, items, err := r.e.OverdueAssets(ctx, 1000)
	if err != nil {
		return nil, err
	}
	var out []forward.Condition
	for _, it := range items {
		out = append(out, forward.Condition{Action: forward.ActionOverdue, Object: "asset/" + it.AssetID, Episode: it.Release,
			Details: map[string]string{"asset": it.AssetName, "release": it.Release, "severity": string(it.Severity),
				"deadline": it.Deadline.UTC().Format(time.RFC3339), "state": string(it.State)}})
	}
	if r.silent <= 0 {
		return out, nil
	}
	agents, err := r.e.Agents(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	for _, ag := range agents {
		if !ag.RevokedAt.IsZero() || ag.LastSeen.IsZero() || now.Sub(ag.LastSeen) < r.silent {
			continue
		}
		seen := ag.LastSeen.UTC().Format(time.RFC3339)
		d := map[string]string{"hostname": ag.Hostname, "last_seen": seen}
		if ag.LastAddr.IsValid() {
			d["address"] = ag.LastAddr.String()
		}
		out = append(out, forward.Condition{Action: forward.ActionSilent, Object: "agent/" + ag.ID, Episode: seen, Details: d})
	}
	return out, nil
}
