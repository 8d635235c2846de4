package appliance

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/httpapi"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/web"
)

// advisoryActor is who the intake acts as in the audit trail and the rollout engine.
const advisoryActor = "system:advisory"

// buildAdvisory builds the vulnerability intake (section advisory): feeds fetched
// through the upstream client and cap, matched against the inventory (discovered
// devices, agents' OS and packages: the agents' check-ins are teed to it), the
// releases' CVEs and the rollout SLA policy. A KEV catalog taken in marks the releases
// it concerns known-exploited (as the manual KEV import does); a new exploited finding
// is notified and, when a release fixes it, an emergency rollout is drafted for
// approval. Mounts the API and the exposure page (permissions in auth.AdminRoutes).
func (s *System) buildAdvisory(ctx context.Context) error {
	opts := advisory.Options{Clock: s.clock, Logger: s.log.With("svc", "advisory"), Registerer: s.registry,
		UserAgent: "patchgate/" + s.opts.Build.Version, ConfigDir: s.opts.configDir()}
	if s.shaper != nil {
		opts.Pace = s.shaper.UpstreamReader
	}
	if s.assets != nil {
		opts.Assets = advisoryAssets{s.assets}
	}
	rc := s.cfg.Rollout.Config(s.segments.NameOf)
	opts.Deadline = findingDeadline(rc.Policy, rc.Zone)
	if s.rollout != nil {
		opts.Releases = advisoryReleases{s.rollout}
		opts.KEV = func(ctx context.Context, k *advisory.KEV) {
			if _, err := s.rollout.ApplyKEV(ctx, advisoryActor, rollout.KEVFrom(k, rc.Zone)); err != nil {
				s.log.Warn("advisory: marking known-exploited releases failed", "err", err)
			}
		}
	}
	opts.Exploited = s.exploitedFindings
	svc, err := advisory.Open(ctx, s.db, s.cfg.Advisory, opts)
	if err != nil {
		return err
	}
	s.advisory = svc
	s.services = append(s.services, svc)
	s.AddPanel(advisoryPanel(svc))
	svc.Register(s.admin.mux, s.advisoryRecord)
	if s.rollout != nil && s.assets != nil {
		s.rollout.SetFacts(advisoryFacts{inventoryAssets{s.assets}, svc})
	}
	s.admin.mux.HandleFunc("GET /exposure", func(w http.ResponseWriter, r *http.Request) {
		e, err := svc.ExposureOf(r.Context(), r.URL.Query().Get("asset")) // ?asset=ID: one device's list
		switch {
		case err != nil:
			httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
		case web.WantsJSON(r) || s.auth == nil:
			httpapi.WriteJSON(w, http.StatusOK, e)
		default:
			s.auth.Forms().Render(w, r, "exposure.html", e)
		}
	})
	return nil
}

// advisoryRecord records a fetch or import asked for through the API.
func (s *System) advisoryRecord(r *http.Request, action, object string, details map[string]string) {
	if s.audit == nil {
		return
	}
	actor := "system"
	if p := auth.FromContext(r.Context()); p != nil {
		actor = p.User
	}
	if err := s.audit.Record(r.Context(), audit.Entry{Actor: actor, Action: action, Object: object, Details: details}); err != nil {
		s.log.Warn("advisory: audit record failed", "action", action, "err", err)
	}
}

// findingDeadline is the rollout SLA policy's deadline of a finding: as for a release
// of the finding's severity published when the finding was first seen (an unknown
// severity as low), known-exploited with the KEV due date (end of that day in the
// site's zone) when the catalog lists it, so an exploited finding gets the emergency
// deadline.
func findingDeadline(p rollout.Policy, zone *time.Location) func(advisory.Finding) time.Time {
	return func(f advisory.Finding) time.Time {
		r := &rollout.Release{Severity: rollout.Severity(f.Severity), KnownExploited: f.Exploited, Published: f.FirstSeen}
		if f.KEVDue != "" {
			r.KEVDue = advisory.KEVEntry{Due: f.KEVDue}.DueAt(zone, rollout.KEVDayStart)
		}
		return p.Deadline(r, f.FirstSeen)
	}
}

// advisoryAssets is the inventory as matching sees it.
type advisoryAssets struct{ inv *inventory.Inventory }

func (x advisoryAssets) MatchAssets(ctx context.Context) ([]advisory.Asset, error) {
	as, err := x.inv.List(ctx, inventory.Filter{})
	if err != nil {
		return nil, err
	}
	out := make([]advisory.Asset, 0, len(as))
	for _, a := range as {
		m := advisory.Asset{ID: a.ID, Name: a.Name, Vendor: a.Vendor, Model: a.Model, Firmware: a.Firmware}
		if len(a.Addresses) > 0 {
			m.Address = a.Addresses[0]
		}
		for _, id := range a.Identifiers {
			if v, ok := strings.CutPrefix(id, "agent:"); ok {
				m.AgentID = v
			}
		}
		if m.AgentID != "" {
			// AgentFacts writes "OSVERSION (BUILD)".
			m.OSName, m.OSBuild = a.OS, ""
			if i := strings.LastIndex(a.OS, " ("); i >= 0 && strings.HasSuffix(a.OS, ")") {
				m.OSName, m.OSBuild = a.OS[:i], strings.TrimSpace(a.OS[i+2:len(a.OS)-1])
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// advisoryFacts tees agents' check-ins: the inventory's observation, then the
// packages for matching (only when the agent sent its package list).
type advisoryFacts struct {
	rollout.FactSink
	svc *advisory.Service
}

func (t advisoryFacts) AgentFacts(ctx context.Context, agentID string, addr netip.Addr, f agentapi.Facts) error {
	if err := t.FactSink.AgentFacts(ctx, agentID, addr, f); err != nil {
		return err
	}
	if len(f.Packages) == 0 {
		return nil
	}
	ps := advisory.PackageSet{Ecosystem: advisory.Ecosystem(f.OSVersion), Packages: make([]advisory.Package, len(f.Packages))}
	for i, p := range f.Packages {
		ps.Packages[i] = advisory.Package{Name: p.Name, Version: p.Version}
	}
	return t.svc.AgentPackages(ctx, agentID, ps)
}

// advisoryReleases gives matching the staged releases and their CVEs.
type advisoryReleases struct{ e *rollout.Engine }

func (x advisoryReleases) FixReleases(ctx context.Context) ([]advisory.Release, error) {
	rels, err := x.e.Releases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]advisory.Release, 0, len(rels))
	for _, r := range rels {
		out = append(out, advisory.Release{ID: strconv.FormatInt(r.ID, 10), Name: r.Name, CVEs: r.CVEs})
	}
	return out, nil
}

// exploitedFindings is told of findings newly open and known-exploited: for each
// release that fixes some, an emergency rollout is drafted (a proposal: it still needs
// its change request and the emergency approvals) unless one of that release is
// already under way; each finding is notified, saying whether a rollout was drafted.
func (s *System) exploitedFindings(ctx context.Context, fs []advisory.Finding) {
	drafted := map[string]string{} // release id → what the notification says
	for _, f := range fs {
		if f.ReleaseID == "" || s.rollout == nil {
			continue
		}
		if _, done := drafted[f.ReleaseID]; done {
			continue
		}
		drafted[f.ReleaseID] = s.proposeEmergency(ctx, f, fs)
	}
	for _, f := range fs {
		subject := fmt.Sprintf("Known-exploited %s on %s", f.Vuln, f.Asset)
		if msg, ok := drafted[f.ReleaseID]; ok {
			subject += "; " + msg
		} else {
			subject += "; no staged release fixes it yet"
		}
		s.notify.Notify(ctx, notify.Event{Kind: notify.ExploitedVulnerability, Subject: subject,
			Object: "asset/" + f.AssetID, Assets: []notify.Asset{{Name: f.Asset, Address: s.assetAddress(ctx, f.AssetID)}}})
	}
}

// proposeEmergency drafts an emergency rollout of f's release and says what it did.
func (s *System) proposeEmergency(ctx context.Context, f advisory.Finding, all []advisory.Finding) string {
	id, err := strconv.ParseInt(f.ReleaseID, 10, 64)
	if err != nil {
		return "release " + f.ReleaseID + " is not the rollout engine's"
	}
	ros, err := s.rollout.Rollouts(ctx)
	if err != nil {
		s.log.Warn("advisory: listing rollouts failed", "err", err)
		return "rollouts could not be read: see the log"
	}
	for _, r := range ros {
		if r.ReleaseID == id && !r.State.Final() {
			return fmt.Sprintf("rollout %d of release %s is under way (%s)", r.ID, f.ReleaseName, r.State)
		}
	}
	var vulns, assets []string
	for _, g := range all {
		if g.ReleaseID == f.ReleaseID {
			vulns, assets = append(vulns, g.Vuln), append(assets, g.Asset)
		}
	}
	slices.Sort(vulns)
	vulns = slices.Compact(vulns)
	r, err := s.rollout.CreateRollout(ctx, advisoryActor, rollout.RolloutSpec{Name: "emergency: " + strings.Join(vulns, ", "),
		ReleaseID: id, Emergency: true,
		Risk: fmt.Sprintf("Known-exploited %s found on %s by the advisory intake; proposed, not approved.", strings.Join(vulns, ", "), strings.Join(assets, ", "))})
	if err != nil {
		s.log.Warn("advisory: drafting an emergency rollout failed", "release", id, "err", err)
		return fmt.Sprintf("release %s fixes it but no emergency rollout could be drafted: see the log", f.ReleaseName)
	}
	return fmt.Sprintf("emergency rollout %d of release %s drafted for approval", r.ID, f.ReleaseName)
}

func (s *System) assetAddress(ctx context.Context, id string) string {
	if s.assets == nil {
		return ""
	}
	a, err := s.assets.Get(ctx, id)
	if err != nil || len(a.Addresses) == 0 {
		return ""
	}
	return a.Addresses[0]
}

// advisoryFindings gives the compliance report the findings (ambiguous ones left out),
// looked up when a report is made.
type advisoryFindings struct{ s *System }

func (x advisoryFindings) ComplianceFindings(ctx context.Context) ([]compliance.Finding, error) {
	if x.s.advisory == nil {
		return nil, nil
	}
	fs, err := x.s.advisory.Findings(ctx, "", true)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Finding, 0, len(fs))
	for _, f := range fs {
		if f.Ambiguous {
			continue
		}
		out = append(out, compliance.Finding{AssetID: f.AssetID, Asset: f.Asset, Vuln: f.Vuln, Severity: f.Severity,
			Exploited: f.Exploited, FirstSeen: f.FirstSeen, Deadline: f.Deadline, ClosedAt: f.ClosedAt,
			Release: f.ReleaseName, ReleaseID: f.ReleaseID})
	}
	return out, nil
}

// advisoryPanel shows each advisory feed: last success, last error, advisories
// stored, CSAF documents left for the next fetch, next run.
func advisoryPanel(svc *advisory.Service) panel {
	return panel{"advisory", "Advisory feeds", func(context.Context) any { return svc.Status() }}
}
