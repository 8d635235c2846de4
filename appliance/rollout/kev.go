package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// KEV is a CISA Known Exploited Vulnerabilities catalog
// (https://www.cisa.gov/known-exploited-vulnerabilities-catalog, JSON feed), as far as
// Patchgate uses it.
type KEV struct {
	Version  string
	Released time.Time
	// Due maps a CVE id to the instant its remediation is due: the start of the day
	// after the catalog's dueDate, in the site's zone (zero when the entry has none).
	Due map[string]time.Time
}

// MaxKEVSize bounds the catalog file read (today's is about 1.5 MB).
const MaxKEVSize = 64 << 20

type kevFile struct {
	Title           string `json:"title"`
	CatalogVersion  string `json:"catalogVersion"`
	DateReleased    string `json:"dateReleased"`
	Count           int    `json:"count"`
	Vulnerabilities []struct {
		CVEID     string `json:"cveID"`
		DateAdded string `json:"dateAdded"`
		DueDate   string `json:"dueDate"`
	} `json:"vulnerabilities"`
}

// ParseKEV reads a KEV catalog in CISA's JSON format, at most MaxKEVSize bytes. Due
// dates are taken as whole days in loc. A malformed file is an error naming the entry;
// nothing is partly applied.
func ParseKEV(r io.Reader, loc *time.Location) (*KEV, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKEVSize+1))
	if err != nil {
		return nil, fmt.Errorf("kev: read: %w", err)
	}
	if len(data) > MaxKEVSize {
		return nil, fmt.Errorf("kev: %w: catalog larger than %d bytes", ErrInvalid, MaxKEVSize)
	}
	var f kevFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("kev: %w: not a KEV JSON catalog: %v", ErrInvalid, err)
	}
	if f.Vulnerabilities == nil {
		return nil, fmt.Errorf("kev: %w: no \"vulnerabilities\" list; is this CISA's known_exploited_vulnerabilities.json?", ErrInvalid)
	}
	k := &KEV{Version: f.CatalogVersion, Due: make(map[string]time.Time, len(f.Vulnerabilities))}
	if f.DateReleased != "" {
		if t, err := time.Parse(time.RFC3339, f.DateReleased); err == nil {
			k.Released = t
		}
	}
	for i, v := range f.Vulnerabilities {
		if !cveRE.MatchString(v.CVEID) {
			return nil, fmt.Errorf("kev: %w: vulnerabilities[%d].cveID: want CVE-YYYY-NNNN, got %q", ErrInvalid, i, v.CVEID)
		}
		var due time.Time
		if v.DueDate != "" {
			d, err := time.Parse(time.DateOnly, v.DueDate)
			if err != nil {
				return nil, fmt.Errorf("kev: %w: vulnerabilities[%d] (%s).dueDate: want YYYY-MM-DD, got %q", ErrInvalid, i, v.CVEID, v.DueDate)
			}
			due = wallTime(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, loc)
		}
		if old, seen := k.Due[v.CVEID]; !seen || (!due.IsZero() && (old.IsZero() || due.Before(old))) {
			k.Due[v.CVEID] = due
		}
	}
	return k, nil
}

// Apply marks r known-exploited if the catalog lists any of its CVEs, with the earliest
// of their due dates. It reports whether r changed.
func (k *KEV) Apply(r *Release) bool {
	var due time.Time
	found := false
	for _, c := range r.CVEs {
		d, ok := k.Due[c]
		if !ok {
			continue
		}
		found = true
		if !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	if !found {
		return false
	}
	changed := !r.KnownExploited || !r.KEVDue.Equal(due)
	r.KnownExploited, r.KEVDue = true, due
	return changed
}
