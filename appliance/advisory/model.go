package advisory

import (
	"strings"
	"time"
)

// Severities, worst first; "unknown" when an advisory states none (the SLA policy
// treats it as low).
const (
	Critical = "critical"
	High     = "high"
	Medium   = "medium"
	Low      = "low"
	Unknown  = "unknown"
)

// Severities in report order.
var Severities = []string{Critical, High, Medium, Low, Unknown}

func severityRank(s string) int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// normSeverity maps the words feeds use (CVSS qualitative ratings, GHSA's MODERATE)
// onto the appliance's severities.
func normSeverity(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return Critical
	case "high", "important":
		return High
	case "medium", "moderate":
		return Medium
	case "low", "none":
		return Low
	}
	return Unknown
}

// Advisory is one vulnerability as a feed describes it, normalised: its ids, severity
// and the products it affects.
type Advisory struct {
	ID        string    `json:"id"`                 // CVE id, OSV id, or CSAF tracking id/CVE
	Document  string    `json:"document,omitempty"` // the CSAF tracking id or OSV id it came from
	CVEs      []string  `json:"cves,omitempty"`
	Title     string    `json:"title,omitempty"`
	Severity  string    `json:"severity"`
	Published time.Time `json:"published,omitzero"`
	URL       string    `json:"url,omitempty"`
	Products  []Product `json:"products"`
	// CVSS and Vector are the base score and vector that decided Severity, when a
	// valid CVSS vector did (ScoreVector); ScoreError names the advisory and the
	// vectors that did not parse (Severity is then the one the feed states, or unknown).
	CVSS       float64 `json:"cvss,omitempty"`
	Vector     string  `json:"cvss_vector,omitempty"`
	ScoreError string  `json:"score_error,omitempty"`
	// From is the URL of the CSAF document it came from (a changes.csv fetch keeps the
	// advisories of unchanged documents by it).
	From string `json:"from,omitempty"`
}

// Product is one affected product of an advisory, with what identifies it.
type Product struct {
	Name         string   `json:"name,omitempty"`   // CSAF full product name
	Vendor       string   `json:"vendor,omitempty"` // CSAF vendor branch
	Model        string   `json:"model,omitempty"`  // CSAF product_name branch
	ModelNumbers []string `json:"model_numbers,omitempty"`
	CPE          string   `json:"cpe,omitempty"`
	PURL         string   `json:"purl,omitempty"`
	Ecosystem    string   `json:"ecosystem,omitempty"` // OSV
	Package      string   `json:"package,omitempty"`   // OSV
	// Versions are affected versions exactly; Ranges affected ranges (OSV); VersionRange
	// a CSAF product_version_range (vers:), which is matched as ambiguous.
	Versions     []string `json:"versions,omitempty"`
	Ranges       []Range  `json:"ranges,omitempty"`
	VersionRange string   `json:"version_range,omitempty"`
	// Fixed is the first version that fixes it, when the feed says.
	Fixed string `json:"fixed,omitempty"`
}

// Range is an OSV range: introduced ≤ v < fixed (or ≤ last_affected). An empty
// Introduced or "0" is every version from the first.
type Range struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
}

// Contains reports whether v is in r, by CompareVersions.
func (r Range) Contains(v string) bool {
	if r.Introduced != "" && r.Introduced != "0" && CompareVersions(v, r.Introduced) < 0 {
		return false
	}
	if r.Fixed != "" && CompareVersions(v, r.Fixed) >= 0 {
		return false
	}
	if r.LastAffected != "" && CompareVersions(v, r.LastAffected) > 0 {
		return false
	}
	return true
}

// Data is what one feed or import delivered: advisories, or a KEV catalog.
type Data struct {
	Kind       string     `json:"kind"`
	Version    string     `json:"version,omitempty"`
	Advisories []Advisory `json:"advisories,omitempty"`
	KEV        []KEVEntry `json:"kev,omitempty"`
	// Docs are the CSAF documents taken in from directories with a changes.csv, each
	// with the time changes.csv gave it: the next fetch takes only those whose time
	// differs (or new ones) and keeps the others' advisories (Advisory.From).
	Docs map[string]time.Time `json:"csaf_docs,omitempty"`
	// ROLIE are the CSAF ROLIE feeds read, by URL: validators for the next fetch's
	// conditional request, and the entries (documents with their "updated" time, taken
	// incrementally like changes.csv lines).
	ROLIE map[string]rolieFeed `json:"rolie_feeds,omitempty"`
	// fetched and pending count the documents a CSAF fetch took and left for the next
	// run (beyond max_documents); not stored.
	fetched, pending int
}
