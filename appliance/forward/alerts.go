package forward

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
)

// The two alerts that are rollout state rather than events of their own: a device past
// its deadline for a release it does not have, and an agent that stopped checking in.
// The AlertWatcher records each, once per episode, as an audit record, so it reaches the
// SIEM like every other record: in order, at least once, from the cursor. (A failed
// deployment needs no watcher: it is the deployment.failed record.)
const (
	ActionOverdue = "alert.device_overdue"
	ActionSilent  = "alert.device_silent"
)

// Condition is one alert-worthy state now. Object names the device ("asset/ID",
// "agent/ID"); Episode tells one occurrence from the next (the release a device is
// overdue for, the last check-in of a silent agent), so each is recorded once.
type Condition struct {
	Action  string
	Object  string
	Episode string
	Details map[string]string // asset names and addresses only
}

func (c Condition) key() string { return c.Action + " " + c.Object + " " + c.Episode }

// AlertWatcher looks at Check every Every and records each condition not yet in the
// trail. It is safe for concurrent use; Run's context stops it.
type AlertWatcher struct {
	Every  time.Duration
	Check  func(ctx context.Context) ([]Condition, error)
	Trail  *audit.Log
	Clock  clock.Clock
	Logger *slog.Logger

	seen map[string]bool // only the Run goroutine touches it
}

// Name, Ready and Health make it an appliance Service.
func (w *AlertWatcher) Name() string             { return "siem-alerts" }
func (w *AlertWatcher) Ready() bool              { return true }
func (w *AlertWatcher) Health() []health.Problem { return nil }

// Run loads the alerts already recorded, then checks until ctx ends.
func (w *AlertWatcher) Run(ctx context.Context) error {
	defaults.Fill(&w.Clock, &w.Logger, nil)
	recs, err := w.Trail.Records(ctx, audit.Query{Action: "alert."})
	if err != nil {
		return fmt.Errorf("forward: alerts: %w", err)
	}
	w.seen = map[string]bool{}
	for _, r := range recs {
		w.seen[Condition{Action: r.Action, Object: r.Object, Episode: r.Details["episode"]}.key()] = true
	}
	for {
		if err := w.once(ctx); err != nil {
			w.Logger.Warn("siem: alert check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Clock.After(w.Every):
		}
	}
}

// once records the conditions not seen yet.
func (w *AlertWatcher) once(ctx context.Context) error {
	cs, err := w.Check(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if w.seen[c.key()] {
			continue
		}
		d := map[string]string{"episode": c.Episode}
		for k, v := range c.Details {
			d[k] = v
		}
		if err := w.Trail.Record(ctx, audit.Entry{Actor: "system:siem", Action: c.Action, Object: c.Object, Details: d}); err != nil {
			return err
		}
		w.seen[c.key()] = true
	}
	return nil
}
