package appliance

import (
	"context"
	"os"
	"strconv"

	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/web"
)

// buildCompliance mounts the compliance page and exports. It runs after the subsystems
// it reads (rollout, whose exceptions and approvals it reports).
func (s *System) buildCompliance(context.Context) error {
	s.linkAuditSinks()
	pages, err := web.NewPages(s, s.log)
	if err != nil {
		return err
	}
	b := &compliance.Builder{MFA: s.auth, Findings: advisoryFindings{s}} // advisory.go
	if eng := s.rollout; eng != nil {
		b.Source, b.Exceptions, b.Excuser = complianceSource{eng, s}, complianceExceptions{eng}, complianceExceptions{eng}
		b.Reviews = complianceReviews{eng} // reviews.go
	}
	host, _ := os.Hostname()
	compliance.NewHandler(b, pages, s.clock.Now, host).Register(s.admin.mux)
	return nil
}

// complianceExceptions gives the compliance report the rollout engine's open exceptions.
type complianceExceptions struct{ e *rollout.Engine }

func (c complianceExceptions) OpenExceptions(ctx context.Context) ([]compliance.Exception, error) {
	exs, err := c.e.OpenExceptions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Exception, 0, len(exs))
	for _, e := range exs {
		scope := "asset " + e.Asset
		if e.Ring != "" {
			scope = "ring " + e.Ring
		}
		target := e.Release
		if e.CVE != "" {
			target = e.CVE
		}
		out = append(out, compliance.Exception{ID: e.ID, Scope: scope, Target: target, State: string(e.State),
			RequestedAt: e.RequestedAt, ExpiresAt: e.ExpiresAt, ReviewDue: e.ReviewDue})
	}
	return out, nil
}

// ExcusedItem asks the rollout engine whether an approved exception covers the item now.
func (c complianceExceptions) ExcusedItem(ctx context.Context, it compliance.Item) (bool, error) {
	return c.e.Excused(ctx, rollout.ExceptionSubject{Assets: []string{it.AssetID, it.Asset}, Ring: it.Ring,
		Releases: []string{it.Release, it.ReleaseID}, CVEs: it.CVEs})
}

// complianceSource reads obligations (deployments with their deadlines) and approvals
// from the rollout engine, and the devices' type and segment from the inventory (built
// after this step, so looked up when a report is made).
type complianceSource struct {
	e *rollout.Engine
	s *System
}

type assetFacts struct{ typ, segment string }

func (c complianceSource) assetFacts(ctx context.Context) map[string]assetFacts {
	out := map[string]assetFacts{}
	if c.s == nil || c.s.assets == nil {
		return out
	}
	assets, err := c.s.assets.List(ctx, inventory.Filter{})
	if err != nil {
		c.s.log.Warn("compliance: inventory unavailable; device types and segments unknown", "err", err)
		return out
	}
	for _, a := range assets {
		out[a.ID] = assetFacts{a.Type, a.Segment}
	}
	return out
}

func (c complianceSource) Items(ctx context.Context) ([]compliance.Item, error) {
	rels, err := c.e.Releases(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[int64]*rollout.Release{}
	for _, r := range rels {
		byID[r.ID] = r
	}
	deps, err := c.e.Deployments(ctx, rollout.DeploymentFilter{Limit: 1 << 30})
	if err != nil {
		return nil, err
	}
	facts := c.assetFacts(ctx)
	var out []compliance.Item
	for _, d := range deps {
		if d.State == rollout.DepCancelled {
			continue
		}
		it := compliance.Item{AssetID: d.AssetID, ReleaseID: strconv.FormatInt(d.ReleaseID, 10), Asset: d.AssetName, Ring: d.Ring, Since: d.Since, Deadline: d.Deadline, Attempts: d.Attempt}
		if it.Asset == "" {
			it.Asset = d.AssetID
		}
		f := facts[d.AssetID]
		it.AssetType, it.Segment = f.typ, f.segment
		if rel := byID[d.ReleaseID]; rel != nil {
			it.Release, it.Severity, it.KnownExploited, it.CVEs = rel.Name, string(rel.Severity), rel.KnownExploited, rel.CVEs
			if it.Since.IsZero() {
				it.Since = rel.Published
			}
		}
		switch {
		case d.State.Done():
			it.PatchedAt = d.ResultAt
			if it.PatchedAt.IsZero() {
				it.PatchedAt = d.StateAt
			}
			it.Failures = max(d.Attempt-1, 0)
		case d.State == rollout.DepFailed:
			it.Failures = d.Attempt
		default:
			it.Failures = max(d.Attempt-1, 0)
		}
		out = append(out, it)
	}
	return out, nil
}

func (c complianceSource) Approvals(ctx context.Context) ([]compliance.Approval, error) {
	ros, err := c.e.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	var out []compliance.Approval
	for _, r := range ros {
		if len(r.Approvals) == 0 || len(r.Approvals) < r.ApprovalsNeeded {
			continue
		}
		a := compliance.Approval{Rollout: strconv.FormatInt(r.ID, 10), Decided: r.Approvals[len(r.Approvals)-1].At}
		evs, err := c.e.Events(ctx, r.ID, 1000)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Action == "rollout.submit" && !ev.Time.After(a.Decided) && ev.Time.After(a.Submitted) {
				a.Submitted = ev.Time
			}
		}
		if !a.Submitted.IsZero() {
			out = append(out, a)
		}
	}
	return out, nil
}
