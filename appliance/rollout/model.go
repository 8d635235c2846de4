package rollout

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// Severity is a release's severity: critical, high, medium or low.
type Severity string

// Severities, most urgent first.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
)

// Severities lists every severity, most urgent first.
var Severities = []Severity{Critical, High, Medium, Low}

// Valid reports whether s is one of the four severities.
func (s Severity) Valid() bool { return slices.Contains(Severities, s) }

// Ring is a group of devices that receive a release together. Rings are worked through
// by their rollout stages; Order is their usual order (pilot 0, core 1, critical 2).
type Ring struct {
	Name     string   `json:"name"`
	Order    int      `json:"order"`
	Selector Selector `json:"selector"`
}

// Selector says which assets belong to a ring. Within a field any listed value matches.
//
// An asset belongs to the ring that names it most specifically: an explicit assignment
// (the inventory's ring for the asset, or the asset listed in Assets) first, then a
// matching tag, then a matching device type, then a matching segment. When rings tie at
// one level, the later ring (higher Order) wins: the cautious choice, so that a critical
// device is never patched early because a broader selector of an earlier ring matched.
type Selector struct {
	Tags        []string `json:"tags,omitempty" yaml:"tags"`
	DeviceTypes []string `json:"device_types,omitempty" yaml:"device_types"`
	Segments    []string `json:"segments,omitempty" yaml:"segments"`
	Assets      []string `json:"assets,omitempty" yaml:"assets"`
}

// Release is what is to be installed: target paths of one upstream repository, how
// urgent it is, and since when it is known.
type Release struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Version is what a device reports once it has the release (an agent's package
	// version or a device's firmware string); a scan reading it counts an agentless
	// device's deployment as succeeded. Optional.
	Version        string    `json:"version,omitempty"`
	Repo           string    `json:"repo"`
	Targets        []string  `json:"targets"`
	Severity       Severity  `json:"severity"`
	CVEs           []string  `json:"cves,omitempty"`
	KnownExploited bool      `json:"known_exploited"`
	KEVDue         time.Time `json:"kev_due,omitzero"` // CISA KEV due date (start of the day after, site zone)
	Published      time.Time `json:"published"`
	Notes          string    `json:"notes,omitempty"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
	// Candidate is the verified vendor file the release was made from (appliance/supply),
	// nil for a release entered by hand. Its target (Targets[0]) is signed into the site
	// repository only when a rollout of the release is approved.
	Candidate *CandidateRef `json:"candidate,omitempty"`
}

// CandidateRef is a vendor candidate a release was made from, with its provenance.
type CandidateRef struct {
	ID           int64     `json:"id"`
	Source       string    `json:"source"`
	Path         string    `json:"path"` // the target path in the site repository
	URL          string    `json:"url"`
	Verification string    `json:"verification"`
	FetchedAt    time.Time `json:"fetched_at"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	SHA512       string    `json:"sha512,omitempty"`
	// Install are the install instructions signed with the target (in its custom
	// metadata, agentapi.CustomKey) when the release is approved: given with the
	// release request, else the source's configured ones; nil: none, and agents that
	// require signed instructions refuse the target.
	Install *agentapi.Instructions `json:"install,omitempty"`
}

var (
	cveRE      = regexp.MustCompile(`^CVE-\d{4}-\d{4,9}$`)
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	repoNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Validate checks a release as given by an admin.
func (r *Release) Validate() error {
	var errs []string
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > 200 {
		errs = append(errs, "name: must be 1-200 characters")
	}
	if !repoNameRE.MatchString(r.Repo) {
		errs = append(errs, fmt.Sprintf("repo: must be a repository name, got %q", r.Repo))
	}
	if len(r.Targets) == 0 || len(r.Targets) > 1000 {
		errs = append(errs, "targets: must list 1-1000 target paths")
	}
	for i, t := range r.Targets {
		if !validTargetPath(t) {
			errs = append(errs, fmt.Sprintf("targets[%d]: %q is not a target path (relative, no . or .. segments)", i, t))
		}
	}
	if !r.Severity.Valid() {
		errs = append(errs, fmt.Sprintf("severity: must be critical, high, medium or low, got %q", r.Severity))
	}
	for i, c := range r.CVEs {
		if !cveRE.MatchString(c) {
			errs = append(errs, fmt.Sprintf("cves[%d]: want CVE-YYYY-NNNN, got %q", i, c))
		}
	}
	if len(r.Version) > 200 || len(r.Notes) > 10000 {
		errs = append(errs, "version or notes: too long")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func validTargetPath(p string) bool {
	if p == "" || len(p) > 1024 || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\\") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Validate checks a ring.
func (r *Ring) Validate() error {
	var errs []string
	if !nameRE.MatchString(r.Name) {
		errs = append(errs, fmt.Sprintf("name: must be lower-case letters, digits, - or _ (max 32), got %q", r.Name))
	}
	if r.Order < 0 || r.Order > 1000 {
		errs = append(errs, fmt.Sprintf("order: must be 0-1000, got %d", r.Order))
	}
	s := r.Selector
	if n := len(s.Tags) + len(s.DeviceTypes) + len(s.Segments) + len(s.Assets); n > 10000 {
		errs = append(errs, "selector: too many entries")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// Asset is what the rollout engine needs to know of a device. The inventory provides
// it (see Assets).
type Asset struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Ring    string   `json:"ring,omitempty"` // an explicit assignment; empty: by the rings' selectors
	Segment string   `json:"segment,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Type    string   `json:"type,omitempty"`
	// Firmware is the version the device last reported (scan or agent), if known.
	Firmware string `json:"firmware,omitempty"`
	// AgentID is the enrolled agent running on the device, if any.
	AgentID string `json:"agent_id,omitempty"`
	// FirstSeen is when the device became known; a release's deadline for a device
	// counts from the later of the release's publication and this.
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// RingOf returns the ring asset a belongs to among rings, "" for none. See Selector.
func RingOf(a Asset, rings []Ring) string {
	byName := map[string]Ring{}
	for _, r := range rings {
		byName[r.Name] = r
	}
	if _, ok := byName[a.Ring]; ok && a.Ring != "" {
		return a.Ring
	}
	levels := []func(Selector) bool{
		func(s Selector) bool { return slices.Contains(s.Assets, a.ID) },
		func(s Selector) bool {
			return slices.ContainsFunc(a.Tags, func(t string) bool { return slices.Contains(s.Tags, t) })
		},
		func(s Selector) bool { return a.Type != "" && slices.Contains(s.DeviceTypes, a.Type) },
		func(s Selector) bool { return a.Segment != "" && slices.Contains(s.Segments, a.Segment) },
	}
	for _, match := range levels {
		best := ""
		bestOrder := -1
		for _, r := range rings {
			if match(r.Selector) && (r.Order > bestOrder || (r.Order == bestOrder && r.Name > best)) {
				best, bestOrder = r.Name, r.Order
			}
		}
		if best != "" {
			return best
		}
	}
	return ""
}
