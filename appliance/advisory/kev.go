package advisory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// ErrInvalid marks input that is not what it claims to be: a malformed catalog,
// advisory or record, or one larger than allowed.
var ErrInvalid = errors.New("invalid")

var cveRE = regexp.MustCompile(`^CVE-\d{4}-\d{4,9}$`)

// KEV is a CISA Known Exploited Vulnerabilities catalog
// (https://www.cisa.gov/known-exploited-vulnerabilities-catalog, JSON feed), as far as
// Patchgate uses it.
type KEV struct {
	Version  string
	Released time.Time
	// Entries maps a CVE id to its entry (the earliest due date when listed twice).
	Entries map[string]KEVEntry
}

// KEVEntry is one listed vulnerability.
type KEVEntry struct {
	CVE     string `json:"cve"`
	Vendor  string `json:"vendor,omitempty"`  // vendorProject
	Product string `json:"product,omitempty"` // product
	Name    string `json:"name,omitempty"`    // vulnerabilityName
	Added   string `json:"added,omitempty"`   // dateAdded, YYYY-MM-DD
	// Due is the catalog's dueDate, a civil date (YYYY-MM-DD; "" when none). The
	// remediation is due at the start of the next day in the site's zone.
	Due string `json:"due,omitempty"`
}

// MaxKEVSize bounds the catalog file read (today's is about 1.5 MB).
const MaxKEVSize = 64 << 20

type kevFile struct {
	CatalogVersion  string `json:"catalogVersion"`
	DateReleased    string `json:"dateReleased"`
	Vulnerabilities []struct {
		CVEID             string `json:"cveID"`
		VendorProject     string `json:"vendorProject"`
		Product           string `json:"product"`
		VulnerabilityName string `json:"vulnerabilityName"`
		DateAdded         string `json:"dateAdded"`
		DueDate           string `json:"dueDate"`
	} `json:"vulnerabilities"`
}

// ParseKEV reads a KEV catalog in CISA's JSON format, at most limit bytes (MaxKEVSize
// when limit ≤ 0). A malformed file is an ErrInvalid naming the entry; nothing is
// partly taken.
func ParseKEV(r io.Reader, limit int64) (*KEV, error) {
	data, err := readBounded(r, limit, MaxKEVSize, "kev: catalog")
	if err != nil {
		return nil, err
	}
	var f kevFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("kev: %w: not a KEV JSON catalog: %v", ErrInvalid, err)
	}
	if f.Vulnerabilities == nil {
		return nil, fmt.Errorf("kev: %w: no \"vulnerabilities\" list; is this CISA's known_exploited_vulnerabilities.json?", ErrInvalid)
	}
	k := &KEV{Version: f.CatalogVersion, Entries: make(map[string]KEVEntry, len(f.Vulnerabilities))}
	if t, err := time.Parse(time.RFC3339, f.DateReleased); err == nil {
		k.Released = t
	}
	for i, v := range f.Vulnerabilities {
		if !cveRE.MatchString(v.CVEID) {
			return nil, fmt.Errorf("kev: %w: vulnerabilities[%d].cveID: want CVE-YYYY-NNNN, got %q", ErrInvalid, i, v.CVEID)
		}
		if v.DueDate != "" {
			if _, err := time.Parse(time.DateOnly, v.DueDate); err != nil {
				return nil, fmt.Errorf("kev: %w: vulnerabilities[%d] (%s).dueDate: want YYYY-MM-DD, got %q", ErrInvalid, i, v.CVEID, v.DueDate)
			}
		}
		e := KEVEntry{CVE: v.CVEID, Vendor: v.VendorProject, Product: v.Product, Name: v.VulnerabilityName, Added: v.DateAdded, Due: v.DueDate}
		if old, seen := k.Entries[v.CVEID]; seen && (e.Due == "" || (old.Due != "" && old.Due <= e.Due)) {
			continue // keep the earliest due date
		}
		k.Entries[v.CVEID] = e
	}
	return k, nil
}

// DueAt is when e's remediation is due: the start of the day after its due date in
// loc (zero when it has none). at converts a civil date to an instant in loc (the
// rollout engine's wall-clock rules); nil: time.Date.
func (e KEVEntry) DueAt(loc *time.Location, at func(y int, m time.Month, d int, loc *time.Location) time.Time) time.Time {
	d, err := time.Parse(time.DateOnly, e.Due)
	if err != nil {
		return time.Time{}
	}
	if at == nil {
		return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc)
	}
	return at(d.Year(), d.Month(), d.Day()+1, loc)
}

// readBounded reads r whole, refusing more than limit bytes (def when limit ≤ 0) with
// an ErrInvalid naming what.
func readBounded(r io.Reader, limit, def int64, what string) ([]byte, error) {
	if limit <= 0 {
		limit = def
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", what, ErrInvalid, limit)
	}
	return data, nil
}
