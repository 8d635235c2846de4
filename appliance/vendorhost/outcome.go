package vendorhost

import (
	"cmp"
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// OutcomeState is what the read-back says of a target a device fetched.
type OutcomeState string

const (
	// OutcomeNotYet: fetched, and no reading of the target's version yet (none since
	// the fetch, or another version while the grace lasts).
	OutcomeNotYet OutcomeState = "not_yet"
	// OutcomeInstalled: discovery read the target's version from the device.
	OutcomeInstalled OutcomeState = "installed"
	// OutcomeMismatch: past the grace, discovery still reads another version.
	OutcomeMismatch OutcomeState = "mismatch"
)

// Outcome is the deployment result of one target fetched through a vendor host by an
// inventory asset: the target's signed version (custom "version") compared with the
// firmware version discovery reads from the device after the fetch.
type Outcome struct {
	AssetID string     `json:"asset_id"`
	Asset   string     `json:"asset,omitempty"` // its name at the fetch
	Device  netip.Addr `json:"device"`
	Repo    string     `json:"repo"`
	Target  string     `json:"target"`
	URL     string     `json:"url"` // host + path the device asked for
	// Version is the target's version from its signed custom metadata.
	Version string       `json:"version"`
	State   OutcomeState `json:"state"`
	// Seen is the version discovery read last ("" before any reading); shown as read,
	// whether or not it parses as a version.
	Seen string `json:"seen,omitempty"`
	// Unparsed: Seen is no version string (see isVersion); the row stays not yet,
	// whatever the grace, with the string shown.
	Unparsed  bool      `json:"unparsed,omitempty"`
	FetchedAt time.Time `json:"fetched_at"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
}

// maxOutcomes bounds the outcome record (one row per asset and target); the least
// recently fetched row goes first.
const maxOutcomes = 10000

type outcomeKey struct{ asset, repo, target string }

type outcomes struct {
	mu   sync.Mutex
	rows map[outcomeKey]*Outcome
}

// fetched records that an asset was handed a target with a version and reports whether
// that changed the row. A row installed stays so and a row not yet keeps its fetch time
// (a device that fetches again and again does not push its grace back); a mismatch
// starts over.
func (o *outcomes) fetched(x Outcome) (Outcome, bool) {
	k := outcomeKey{x.AssetID, x.Repo, x.Target}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rows == nil {
		o.rows = map[outcomeKey]*Outcome{}
	}
	if r, ok := o.rows[k]; ok && r.State != OutcomeMismatch {
		return *r, false
	}
	if _, ok := o.rows[k]; !ok && len(o.rows) >= maxOutcomes {
		var oldest outcomeKey
		var at time.Time
		for k, r := range o.rows {
			if at.IsZero() || r.FetchedAt.Before(at) {
				oldest, at = k, r.FetchedAt
			}
		}
		delete(o.rows, oldest)
	}
	x.State = OutcomeNotYet
	if r, ok := o.rows[k]; ok {
		x.Seen, x.CheckedAt = r.Seen, r.CheckedAt // the mismatch's reading, until the next one
	}
	o.rows[k] = &x
	return x, true
}

// observe compares a version read from asset with each of its open rows and returns
// the rows whose state changed.
func (o *outcomes) observe(asset, version string, now time.Time, grace time.Duration) []Outcome {
	seen := strings.TrimSpace(version)
	o.mu.Lock()
	defer o.mu.Unlock()
	var changed []Outcome
	for k, r := range o.rows {
		if k.asset != asset || r.State == OutcomeInstalled {
			continue
		}
		before, seenBefore := r.State, r.Seen
		r.Seen, r.CheckedAt, r.Unparsed = seen, now, false
		switch {
		case strings.EqualFold(seen, r.Version):
			r.State = OutcomeInstalled
		case !isVersion(seen):
			r.State, r.Unparsed = OutcomeNotYet, true
		case now.Sub(r.FetchedAt) > grace:
			r.State = OutcomeMismatch
		default:
			r.State = OutcomeNotYet
		}
		if r.State != before || r.Unparsed && seen != seenBefore {
			changed = append(changed, *r)
		}
	}
	return changed
}

// list returns the rows (of one asset, or all for ""), most recently fetched first.
func (o *outcomes) list(asset string) []Outcome {
	o.mu.Lock()
	out := make([]Outcome, 0, len(o.rows))
	for k, r := range o.rows {
		if asset == "" || k.asset == asset {
			out = append(out, *r)
		}
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(x, y Outcome) int {
		return cmp.Or(y.FetchedAt.Compare(x.FetchedAt), strings.Compare(x.AssetID, y.AssetID),
			strings.Compare(x.Repo, y.Repo), strings.Compare(x.Target, y.Target))
	})
	return out
}

// maxVersion bounds a version string read from a device.
const maxVersion = 64

// isVersion reports whether s, read from a device, parses as a version: 1 to 64
// printable ASCII characters (spaces only inside), at least one of them a digit
// ("V75.20.02Z", "2.1.0-b3", "FW 4.2"). A reading that does not decides nothing.
func isVersion(s string) bool {
	if s == "" || len(s) > maxVersion || s != strings.TrimSpace(s) {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			return false
		}
		digit = digit || '0' <= c && c <= '9'
	}
	return digit
}

// targetVersion reads {"version": "..."} from a target's custom metadata ("" without).
func targetVersion(custom json.RawMessage) string {
	if len(custom) == 0 {
		return ""
	}
	var c struct {
		Version json.RawMessage `json:"version"`
	}
	if json.Unmarshal(custom, &c) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(c.Version, &v) != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

// ObserveFirmware is the read-back: the inventory calls it (inventory.FirmwareObserver)
// with every firmware version discovery reads. Each target the asset fetched through a
// vendor host since is compared with it: installed when it is the target's version,
// mismatch when it is another one past the grace (vendorhost.outcome_grace after the
// fetch), else not yet; a string that does not parse as a version (isVersion) leaves it
// not yet whatever the grace, marked Unparsed, and each new such string is a change. It returns how many rows became installed; each change goes to
// Options.OnOutcome.
func (s *Server) ObserveFirmware(ctx context.Context, assetID, version string) (int, error) {
	if assetID == "" || strings.TrimSpace(version) == "" {
		return 0, nil
	}
	changed := s.outcomes.observe(assetID, version, s.clock.Now(), s.grace)
	n := 0
	for _, o := range changed {
		if o.State == OutcomeInstalled {
			n++
		}
		s.log.Info("vendor host read-back", "asset", o.AssetID, "target", o.Repo+"/"+o.Target, "state", string(o.State),
			"version", o.Version, "seen", o.Seen)
		if s.onOutcome != nil {
			s.onOutcome(ctx, o)
		}
	}
	return n, nil
}

// Outcomes returns the read-back results of one asset (all for ""), most recently
// fetched first.
func (s *Server) Outcomes(assetID string) []Outcome { return s.outcomes.list(assetID) }

// recordFetch notes that the device at addr was handed target t of the mapped URL.
func (s *Server) recordFetch(ctx context.Context, d Device, host, path string, t target) {
	if s.assetID == nil || !d.Addr.IsValid() {
		return
	}
	s.mu.Lock()
	version := s.versions[t]
	s.mu.Unlock()
	if version == "" {
		return // nothing to compare a reading with
	}
	id := s.assetID(d.Addr)
	if id == "" {
		return
	}
	o, ok := s.outcomes.fetched(Outcome{AssetID: id, Asset: d.Asset, Device: d.Addr, Repo: t.repo, Target: t.path,
		URL: host + path, Version: version, FetchedAt: s.clock.Now()})
	if ok && s.onOutcome != nil {
		s.onOutcome(ctx, o)
	}
}
