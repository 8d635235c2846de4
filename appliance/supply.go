package appliance

import (
	"context"
	"fmt"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/supply"
)

// buildSupply builds the vendor sources (sources section): each checked on its interval,
// its downloads verified and staged under STATE/supply as candidates, paced by the
// upstream bandwidth cap; mounts the sources API (permissions in auth.AdminRoutes) and
// records rejections and new candidates in the audit trail.
func (s *System) buildSupply(ctx context.Context) error {
	opts := supply.Options{Dir: s.cfg.State.Path("supply"), Clock: s.clock,
		Logger: s.log.With("svc", "supply"), Registerer: s.registry, UserAgent: "patchgate/" + s.opts.Build.Version,
		Location: s.cfg.Bandwidth.Location(), ConfigDir: s.opts.configDir()}
	if s.shaper != nil {
		opts.Pace = s.shaper.UpstreamReader
	}
	if s.audit != nil {
		opts.Events = supplyAudit{s.audit}
	}
	svc, err := supply.Open(ctx, s.db, s.cfg.Sources, opts)
	if err != nil {
		return err
	}
	s.services = append(s.services, svc)
	svc.Register(s.admin.mux)
	s.registerCandidateReleases(svc) // publish.go
	s.registerAskedCandidates(svc)   // vendorasked.go
	s.registerSourcesPage(svc)       // sources.go
	if len(s.cfg.Sources) > 0 {
		s.AddPanel(panel{"sources", "Vendor sources", func(context.Context) any { return svc.Sources() }})
	}
	return nil
}

// supplyAudit records refused source checks (source.rejected, with the reason) and new
// candidates (source.candidate, with their provenance).
type supplyAudit struct{ l *audit.Log }

func (a supplyAudit) Rejected(ctx context.Context, r supply.Rejected) error {
	return a.l.Record(ctx, audit.Entry{Actor: "system:supply", Action: "source.rejected", Object: "source/" + r.Source,
		Details: map[string]string{"kind": r.Kind, "url": r.URL, "reason": r.Reason, "error": r.Error}})
}

func (a supplyAudit) Staged(ctx context.Context, c supply.Candidate) error {
	return a.l.Record(ctx, audit.Entry{Actor: "system:supply", Action: "source.candidate", Object: "source/" + c.Source,
		After: c.SHA256, Details: map[string]string{"name": c.Name, "version": c.Version, "url": c.URL,
			"verification": c.Verification, "size": fmt.Sprint(c.Size), "sha512": c.SHA512}})
}
