package appliance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/tuf"
)

// buildSelfUpdate builds the appliance's own update (selfupdate section): newer versions
// from the configured repository's verified targets, staged in the cache; the panel with
// the installed, pending and available versions; the admin's install and rollback
// actions (through auth), each recorded in the audit trail, as do the installer's
// results. The root installer (patchgate image apply) does the writing.
func (s *System) buildSelfUpdate(context.Context) error {
	c := s.cfg.SelfUpdate
	cfg := c.Config(s.cfg.State.Path("selfupdate"), s.opts.Build.Version)
	opts := selfupdate.Options{Clock: s.clock, Log: s.log.With("svc", "selfupdate"), Registerer: s.registry}
	if c.Repository != "" {
		var m *tuf.Mirror
		if s.updates != nil {
			m = s.updates.cache.Mirror(c.Repository)
		}
		if m == nil {
			return fmt.Errorf("selfupdate: repository %s is not mirrored", c.Repository)
		}
		opts.Targets, opts.Stager = m, s.updates.cache
	}
	if s.audit != nil {
		opts.Events = selfUpdateAudit{s.audit}
	}
	svc, err := selfupdate.New(cfg, opts)
	if err != nil {
		return err
	}
	s.services = append(s.services, svc)
	s.AddPanel(selfUpdatePanel(svc))
	if s.auth != nil {
		s.auth.SetApplianceUpdates(authAppliance{svc})
	}
	return nil
}

// authAppliance is auth.ApplianceUpdates: the service's refusals become auth's conflicts.
type authAppliance struct{ s *selfupdate.Service }

func (a authAppliance) Install(ctx context.Context, actor, version string, reboot bool) error {
	_, err := a.s.Install(ctx, actor, version, reboot)
	return conflictOf(err)
}

func (a authAppliance) Rollback(ctx context.Context, actor string, reboot bool) error {
	_, err := a.s.Rollback(ctx, actor, reboot)
	return conflictOf(err)
}

func conflictOf(err error) error {
	if errors.Is(err, selfupdate.ErrRefused) {
		return fmt.Errorf("%w: %w", auth.ErrConflict, err)
	}
	return err
}

// selfUpdateAudit records the admins' requests (who, how, from where) and the
// installer's results.
type selfUpdateAudit struct{ l *audit.Log }

func (a selfUpdateAudit) Requested(ctx context.Context, r selfupdate.Request) error {
	e := principalEntry(ctx, r.RequestedBy)
	e.Action, e.Object = "appliance."+r.Action+".request", "appliance"
	e.Details = map[string]string{"request": r.ID, "reboot": fmt.Sprint(r.Reboot)}
	if r.Version != "" {
		e.Object, e.Details["version"] = "appliance/"+r.Version, r.Version
	}
	return a.l.Record(ctx, e)
}

func (a selfUpdateAudit) Finished(ctx context.Context, r selfupdate.Result) error {
	result := "ok"
	if !r.OK {
		result = "failed"
	}
	e := audit.Entry{Actor: "system:installer", Action: "appliance." + r.Action + "." + result, Object: "appliance",
		Details: map[string]string{"request": r.ID, "requested_by": r.RequestedBy, "reboot": fmt.Sprint(r.Reboot),
			"started": r.Started.Format(time.RFC3339), "finished": r.Finished.Format(time.RFC3339)}}
	if r.Version != "" {
		e.Object, e.Details["version"] = "appliance/"+r.Version, r.Version
	}
	if r.Error != "" {
		e.Details["error"] = r.Error
	}
	return a.l.Record(ctx, e)
}
