package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/tuf"
)

// The site repository: the appliance's own signed repository that releases made from
// vendor candidates are published into. It lives in STATE/tuf-site (created on the first
// start with sources configured; its root key is in STATE/tuf-site/root-keys until the
// offline ceremony moves it), is served on the distribution listener under
// /site-upstream/ and mirrored, like any upstream, as repository "site" (/repos/site/...).
// Its timestamp and snapshot are kept fresh by a tuf.Refresher (tuf.site settings); its
// targets are signed only when a rollout of a candidate-backed release is approved.
const (
	siteRepoName = tuf.SiteName
	siteRepoDir  = "tuf-site"
)

// siteRepo publishes approved candidate releases into the site repository.
type siteRepo struct {
	s       *System
	name    string
	refresh *tuf.Refresher
	log     *slog.Logger
	supply  *supply.Service // set by registerCandidateReleases

	mu      sync.Mutex // one publish at a time
	errMu   sync.Mutex // guards lastErr
	lastErr error
	kick    chan struct{}
}

// releaseInstructions puts a candidate release's install instructions (chosen when the
// release was made: its request's, else its source's) into its target's custom metadata
// under agentapi.CustomKey, so they are signed with the bytes. A release without any
// leaves custom as it is (agents requiring signed instructions refuse its target).
func releaseInstructions(rel *rollout.Release, custom json.RawMessage) (json.RawMessage, error) {
	if rel.Candidate == nil || rel.Candidate.Install == nil {
		return custom, nil
	}
	return agentapi.WithInstructions(custom, *rel.Candidate.Install)
}

// requestInstructions are the install instructions of a candidate release: the
// request's install field (the JSON of agentapi.Instructions, {"install": {"linux":
// {"command": [...]}}}) if given, else the source's configured ones, else none.
func requestInstructions(svc *supply.Service, source, field string) (*agentapi.Instructions, error) {
	if strings.TrimSpace(field) == "" {
		if in, ok := svc.Instructions(source); ok {
			return &in, nil
		}
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(field))
	dec.DisallowUnknownFields()
	var in agentapi.Instructions
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("install: %w: want the JSON of signed install instructions, e.g. {\"install\": {\"linux\": {\"command\": [\"/usr/bin/dpkg\", \"-i\", \"{file}\"]}}}: %v", rollout.ErrInvalid, err)
	}
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("install: %w: %v", rollout.ErrInvalid, err)
	}
	return &in, nil
}

// buildSiteUpstream creates (first start) or re-publishes the site repository, keeps it
// fresh, serves it under /site-upstream/ and returns the repository that mirrors it.
func (s *System) buildSiteUpstream(ctx context.Context, log *slog.Logger) (tuf.Repository, error) {
	dir := s.cfg.State.Path(siteRepoDir)
	site := s.cfg.TUF.Site
	p, created, err := openOrInitRepository(ctx, dir,
		tuf.PublisherOptions{Now: s.clock.Now, SnapshotExpires: site.SnapshotExpiry.D(), TimestampExpires: site.TimestampExpiry.D()},
		tuf.InitOptions{Now: s.clock.Now, SnapshotExpires: site.SnapshotExpiry.D(), TimestampExpires: site.TimestampExpiry.D()})
	if err != nil {
		return tuf.Repository{}, fmt.Errorf("site repository %s: %w", dir, err)
	}
	if created {
		log.Warn("site repository created: move its root key offline (patchgate tuf root)", "dir", filepath.Join(dir, "root-keys"))
	}
	repo, r, err := s.serveOwnRepository(log, siteRepoName, "/site-upstream", dir, p)
	if err != nil {
		return tuf.Repository{}, err
	}
	sr := &siteRepo{s: s, name: siteRepoName, refresh: r, log: s.log.With("svc", "site-publish"), kick: make(chan struct{}, 1)}
	s.site = sr
	s.services = append(s.services, sr)
	return repo, nil
}

// registerCandidateReleases mounts POST /api/v1/candidates/{id}/release (permission in
// auth.AdminRoutes: rollout.request, as POST /api/v1/releases; a form or JSON with
// severity and optionally name, cves, known_exploited, notes) and the candidates page
// (GET /candidates, a release button per candidate), and signs the target of a
// candidate release when a rollout of it is approved (the rollout engine's approval,
// with its separation of duties, decides).
func (s *System) registerCandidateReleases(svc *supply.Service) {
	if s.site == nil || s.rollout == nil || s.auth == nil {
		return
	}
	s.site.supply = svc
	s.rollout.OnApproved(s.site.approved)
	forms := s.auth.Forms()
	s.admin.mux.HandleFunc("GET /candidates", func(w http.ResponseWriter, r *http.Request) {
		page, err := s.site.candidatesPage(r.Context())
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		forms.Render(w, r, "candidates.html", page)
	})
	s.admin.mux.HandleFunc("POST /api/v1/candidates/{id}/release", func(w http.ResponseWriter, r *http.Request) {
		in, err := forms.Input(r, "name", "severity", "cves", "known_exploited", "notes", "install")
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		who, err := auth.Actor(r)
		if err != nil {
			forms.Fail(w, r, auth.Refuse(http.StatusUnauthorized, err.Error()))
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			forms.Fail(w, r, auth.Refuse(http.StatusNotFound, fmt.Sprintf("candidate %q: no such candidate", r.PathValue("id"))))
			return
		}
		rel, err := s.site.createRelease(r.Context(), who, id, in)
		if errors.Is(err, supply.ErrUnknownCandidate) {
			err = auth.Refuse(http.StatusNotFound, err.Error())
		}
		if err != nil {
			forms.Fail(w, r, rolloutError(err))
			return
		}
		forms.Done(w, r, in, "/candidates", http.StatusCreated, rel)
	})
}

// CandidatesPage is the candidates page's data: every candidate, newest first, with the
// release made from it, if any.
type CandidatesPage struct {
	Candidates []CandidateRow `json:"candidates"`
}

// CandidateRow is one candidate and its release (0: none yet).
type CandidateRow struct {
	supply.Candidate
	Release int64 `json:"release,omitempty"`
}

func (sr *siteRepo) candidatesPage(ctx context.Context) (CandidatesPage, error) {
	cs, err := sr.supply.Candidates(ctx, "")
	if err != nil {
		return CandidatesPage{}, err
	}
	rels, err := sr.s.rollout.Releases(ctx)
	if err != nil {
		return CandidatesPage{}, err
	}
	released := map[int64]int64{}
	for _, rel := range rels {
		if rel.Candidate != nil {
			released[rel.Candidate.ID] = rel.ID
		}
	}
	page := CandidatesPage{Candidates: []CandidateRow{}}
	for _, c := range cs {
		page.Candidates = append(page.Candidates, CandidateRow{Candidate: c, Release: released[c.ID]})
	}
	return page, nil
}

// createRelease makes candidate id a release of the site repository: target
// SOURCE/FILENAME, the candidate's version and provenance; in gives severity (required),
// name (default: file name and version), cves (space-separated), known_exploited, notes
// and install (the instructions signed with the target; default: the source's).
func (sr *siteRepo) createRelease(ctx context.Context, actor string, id int64, in map[string]string) (*rollout.Release, error) {
	c, err := sr.supply.Candidate(ctx, id)
	if err != nil {
		return nil, err
	}
	target := c.Source + "/" + path.Base(c.Name)
	if _, err := tuf.ParseTargetPath(target); err != nil {
		return nil, fmt.Errorf("candidate %d: target path %q: %w: %v", id, target, rollout.ErrInvalid, err)
	}
	install, err := requestInstructions(sr.supply, c.Source, in["install"])
	if err != nil {
		return nil, fmt.Errorf("candidate %d: %w", id, err)
	}
	name := in["name"]
	if name == "" {
		name = path.Base(c.Name)
		if c.Version != "" {
			name += " " + c.Version
		}
	}
	return sr.s.rollout.CreateCandidateRelease(ctx, actor, rollout.Release{Name: name, Version: c.Version, Repo: sr.name,
		Targets: []string{target}, Severity: rollout.Severity(in["severity"]), CVEs: strings.Fields(in["cves"]),
		KnownExploited: in["known_exploited"] == "true" || in["known_exploited"] == "on", Notes: in["notes"],
		Candidate: &rollout.CandidateRef{ID: c.ID, Source: c.Source, Path: target, URL: c.URL, Verification: c.Verification,
			FetchedAt: c.FetchedAt, Size: c.Size, SHA256: c.SHA256, SHA512: c.SHA512, Install: install}})
}

// approved is the rollout engine's OnApproved hook: it signs the target of rollout r's
// release if it was made from a candidate. A failure is logged, shown in health and
// retried by Run.
func (sr *siteRepo) approved(ctx context.Context, r *rollout.Rollout) {
	if err := sr.publishRollout(ctx, r); err != nil {
		sr.failed(err)
	}
}

func (sr *siteRepo) failed(err error) {
	sr.log.Error("publishing an approved release failed; retrying", "err", err)
	sr.setErr(err)
	select {
	case sr.kick <- struct{}{}:
	default:
	}
}

// publishRollout adds the candidate's bytes as the release's target (provenance and
// install instructions in its custom metadata), publishes targets, snapshot and
// timestamp, tells the refresher and refreshes the mirror. A target already published
// with the candidate's sha256 is left as it is.
func (sr *siteRepo) publishRollout(ctx context.Context, r *rollout.Rollout) error {
	if !r.State.Released() {
		return nil
	}
	rel, err := sr.s.rollout.Release(ctx, r.ReleaseID)
	if err != nil {
		return err
	}
	ref := rel.Candidate
	if ref == nil || rel.Repo != sr.name || sr.supply == nil {
		return nil
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	p := sr.refresh.Publisher()
	if published(p, ref.Path, ref.SHA256) {
		return nil
	}
	c, err := sr.supply.Candidate(ctx, ref.ID)
	if err != nil {
		return fmt.Errorf("publish release %d: %w", rel.ID, err)
	}
	if c.SHA256 != ref.SHA256 || c.Size != ref.Size {
		return fmt.Errorf("publish release %d: candidate %d is not the one released (sha256 %s, size %d; release says %s, %d): nothing signed",
			rel.ID, c.ID, c.SHA256, c.Size, ref.SHA256, ref.Size)
	}
	prov := *ref
	prov.Install = nil // signed under agentapi.CustomKey, not twice
	custom, err := json.Marshal(siteTargetCustom{Release: siteTargetRelease{ID: rel.ID, Name: rel.Name, Version: rel.Version}, Provenance: prov})
	if err == nil {
		custom, err = releaseInstructions(rel, custom)
	}
	if err != nil {
		return fmt.Errorf("publish release %d: custom metadata: %w", rel.ID, err)
	}
	ti, err := p.Add(ctx, sr.supply.Path(c.SHA256), ref.Path, custom)
	if err != nil {
		return fmt.Errorf("publish release %d: %w", rel.ID, err)
	}
	if got := ti.Hashes["sha256"].String(); got != ref.SHA256 || ti.Length != ref.Size {
		_ = p.Remove(ref.Path)
		return fmt.Errorf("publish release %d: the staged bytes of candidate %d changed on disk (sha256 %s, %d bytes): nothing signed", rel.ID, c.ID, got, ti.Length)
	}
	pub, err := p.Publish(ctx)
	if err != nil {
		return fmt.Errorf("publish release %d: %w", rel.ID, err)
	}
	sr.refresh.Changed()
	sr.log.Info("approved release signed into the site repository", "release", rel.ID, "rollout", r.ID, "target", ref.Path, "targets_version", pub.Targets)
	if sr.s.audit != nil {
		if err := sr.s.audit.Record(ctx, audit.Entry{Actor: "system:site-repository", Action: "release.sign", Object: "release/" + strconv.FormatInt(rel.ID, 10),
			After: ref.SHA256, Details: map[string]string{"repo": sr.name, "target": ref.Path, "candidate": strconv.FormatInt(ref.ID, 10),
				"rollout": strconv.FormatInt(r.ID, 10), "targets_version": strconv.FormatInt(pub.Targets, 10)}}); err != nil {
			sr.log.Error("audit release.sign", "err", err)
		}
	}
	if sr.s.updates != nil {
		if m := sr.s.updates.cache.Mirror(sr.name); m != nil {
			if err := m.Refresh(ctx); err != nil { // else its next refresh picks it up
				sr.log.Warn("mirror refresh after publishing", "err", err)
			}
		}
	}
	return nil
}

// siteTargetCustom is a site target's custom metadata: the release and the candidate's
// provenance, signed with the bytes (the install instructions are merged in by
// releaseInstructions).
type siteTargetCustom struct {
	Release    siteTargetRelease    `json:"release"`
	Provenance rollout.CandidateRef `json:"provenance"`
}

type siteTargetRelease struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// published reports whether the published targets.json lists path with this sha256.
func published(p *tuf.Publisher, path, sha256 string) bool {
	md, err := metadata.Targets().FromFile(filepath.Join(p.MetadataDir(), "targets.json"))
	if err != nil {
		return false
	}
	tf, ok := md.Signed.Targets[path]
	return ok && tf.Hashes["sha256"].String() == sha256
}

// reconcile publishes every released candidate rollout not yet in the repository (after
// a failed publish or a crash between approval and signing).
func (sr *siteRepo) reconcile(ctx context.Context) error {
	ros, err := sr.s.rollout.Rollouts(ctx, rollout.Approved, rollout.Scheduled, rollout.Running, rollout.Paused, rollout.Completed)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range ros {
		errs = append(errs, sr.publishRollout(ctx, r))
	}
	return errors.Join(errs...)
}

func (sr *siteRepo) Name() string { return "site-publish" }

// Ready is true from the start: a failed publish is a health problem.
func (sr *siteRepo) Ready() bool { return true }

// Run reconciles at start, and again a minute after each failure until one succeeds.
func (sr *siteRepo) Run(ctx context.Context) error {
	for {
		var retry <-chan time.Time
		if sr.s.rollout != nil {
			err := sr.reconcile(ctx)
			sr.setErr(err)
			if err != nil && ctx.Err() == nil {
				sr.log.Error("publishing approved releases failed; retrying in a minute", "err", err)
				retry = sr.s.clock.After(time.Minute)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
		case <-sr.kick:
		}
	}
}

func (sr *siteRepo) setErr(err error) {
	sr.errMu.Lock()
	sr.lastErr = err
	sr.errMu.Unlock()
}

func (sr *siteRepo) Health() []health.Problem {
	sr.errMu.Lock()
	defer sr.errMu.Unlock()
	if sr.lastErr == nil {
		return nil
	}
	return []health.Problem{{Code: "site-publish-failed", Severity: health.Error,
		Text: fmt.Sprintf("site repository %s: an approved release could not be signed (retried every minute): %v", sr.name, sr.lastErr)}}
}
