package advisory

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// MaxCSAFSize bounds one CSAF document or provider metadata file by default.
const MaxCSAFSize = 16 << 20

type csafHelper struct {
	CPE          string   `json:"cpe"`
	PURL         string   `json:"purl"`
	ModelNumbers []string `json:"model_numbers"`
}

type csafProduct struct {
	ProductID string      `json:"product_id"`
	Name      string      `json:"name"`
	Helper    *csafHelper `json:"product_identification_helper"`
}

type csafBranch struct {
	Category string       `json:"category"`
	Name     string       `json:"name"`
	Product  *csafProduct `json:"product"`
	Branches []csafBranch `json:"branches"`
}

type csafDoc struct {
	Document *struct {
		Category    string `json:"category"`
		CSAFVersion string `json:"csaf_version"`
		Title       string `json:"title"`
		Tracking    struct {
			ID                 string `json:"id"`
			InitialReleaseDate string `json:"initial_release_date"`
			CurrentReleaseDate string `json:"current_release_date"`
		} `json:"tracking"`
		AggregateSeverity *struct {
			Text string `json:"text"`
		} `json:"aggregate_severity"`
		References []struct {
			Category string `json:"category"`
			URL      string `json:"url"`
		} `json:"references"`
	} `json:"document"`
	ProductTree *struct {
		Branches         []csafBranch  `json:"branches"`
		FullProductNames []csafProduct `json:"full_product_names"`
	} `json:"product_tree"`
	Vulnerabilities []struct {
		CVE           string `json:"cve"`
		Title         string `json:"title"`
		ProductStatus struct {
			KnownAffected []string `json:"known_affected"`
			FirstAffected []string `json:"first_affected"`
			LastAffected  []string `json:"last_affected"`
			Fixed         []string `json:"fixed"`
			FirstFixed    []string `json:"first_fixed"`
		} `json:"product_status"`
		Scores []struct {
			Products []string `json:"products"`
			CVSSv3   *struct {
				BaseSeverity string  `json:"baseSeverity"`
				BaseScore    float64 `json:"baseScore"`
				Vector       string  `json:"vectorString"`
			} `json:"cvss_v3"`
			CVSSv2 *struct {
				Vector string `json:"vectorString"`
			} `json:"cvss_v2"`
		} `json:"scores"`
		IDs []struct {
			SystemName string `json:"system_name"`
			Text       string `json:"text"`
		} `json:"ids"`
	} `json:"vulnerabilities"`
}

// csafLeaf is a product of the tree with the branch path that names it.
type csafLeaf struct {
	p                      csafProduct
	vendor, model, version string
	versionRange           string
}

func walkBranches(bs []csafBranch, at csafLeaf, depth int, out map[string]csafLeaf) error {
	if depth > 30 {
		return fmt.Errorf("csaf: %w: product_tree branches nested deeper than 30", ErrInvalid)
	}
	for _, b := range bs {
		cur := at
		switch b.Category {
		case "vendor":
			cur.vendor = b.Name
		case "product_name", "product_family":
			if cur.model == "" || b.Category == "product_name" {
				cur.model = b.Name
			}
		case "product_version":
			cur.version = b.Name
		case "product_version_range":
			cur.versionRange = b.Name
		}
		if b.Product != nil {
			cur.p = *b.Product
			out[b.Product.ProductID] = cur
		}
		if err := walkBranches(b.Branches, cur, depth+1, out); err != nil {
			return err
		}
	}
	return nil
}

// ParseCSAF reads one CSAF 2.0 document (at most limit bytes; MaxCSAFSize when ≤ 0)
// into one Advisory per vulnerability it lists with known-affected products. A
// malformed document is an ErrInvalid naming the field.
func ParseCSAF(r io.Reader, limit int64) ([]Advisory, error) {
	data, err := readBounded(r, limit, MaxCSAFSize, "csaf: document")
	if err != nil {
		return nil, err
	}
	var d csafDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("csaf: %w: not a CSAF JSON document: %v", ErrInvalid, err)
	}
	if d.Document == nil || d.Document.CSAFVersion != "2.0" {
		return nil, fmt.Errorf("csaf: %w: document.csaf_version: want \"2.0\"", ErrInvalid)
	}
	id := d.Document.Tracking.ID
	if id == "" {
		return nil, fmt.Errorf("csaf: %w: document.tracking.id is empty", ErrInvalid)
	}
	leaves := map[string]csafLeaf{}
	if d.ProductTree != nil {
		if err := walkBranches(d.ProductTree.Branches, csafLeaf{}, 0, leaves); err != nil {
			return nil, err
		}
		for _, p := range d.ProductTree.FullProductNames {
			if _, ok := leaves[p.ProductID]; !ok {
				leaves[p.ProductID] = csafLeaf{p: p}
			}
		}
	}
	published, _ := time.Parse(time.RFC3339, d.Document.Tracking.InitialReleaseDate)
	var docURL string
	for _, ref := range d.Document.References {
		if ref.Category == "self" {
			if u, err := url.Parse(ref.URL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
				docURL = ref.URL
			}
		}
	}
	aggregate := ""
	if d.Document.AggregateSeverity != nil {
		aggregate = d.Document.AggregateSeverity.Text
	}
	var out []Advisory
	for i, v := range d.Vulnerabilities {
		if v.CVE != "" && !cveRE.MatchString(v.CVE) {
			return nil, fmt.Errorf("csaf: %w: %s: vulnerabilities[%d].cve: want CVE-YYYY-NNNN, got %q", ErrInvalid, id, i, v.CVE)
		}
		a := Advisory{ID: v.CVE, Document: id, Title: v.Title, Severity: Unknown, Published: published, URL: docURL}
		if a.ID == "" {
			a.ID = fmt.Sprintf("%s#%d", id, i)
			for _, x := range v.IDs {
				if x.Text != "" {
					a.ID = x.Text
					break
				}
			}
		} else {
			a.CVEs = []string{v.CVE}
		}
		if a.Title == "" {
			a.Title = d.Document.Title
		}
		var sc scoring
		for _, s := range v.Scores {
			if s.CVSSv2 != nil {
				sc.add(s.CVSSv2.Vector)
			}
			if s.CVSSv3 == nil {
				continue
			}
			sc.add(s.CVSSv3.Vector)
			sev := normSeverity(s.CVSSv3.BaseSeverity)
			if sev == Unknown {
				sev = cvssRating(s.CVSSv3.BaseScore)
			}
			if severityRank(sev) > severityRank(a.Severity) {
				a.Severity = sev
			}
		}
		if a.Severity == Unknown {
			a.Severity = normSeverity(aggregate)
		}
		sc.apply(&a)
		fixed := map[string]string{} // vendor/model → fixed version
		for _, pid := range append(append([]string{}, v.ProductStatus.Fixed...), v.ProductStatus.FirstFixed...) {
			if l, ok := leaves[pid]; ok && l.version != "" {
				k := norm(l.vendor) + "/" + norm(l.model)
				if old, seen := fixed[k]; !seen || CompareVersions(l.version, old) < 0 {
					fixed[k] = l.version
				}
			}
		}
		affected := append(append(append([]string{}, v.ProductStatus.KnownAffected...), v.ProductStatus.FirstAffected...), v.ProductStatus.LastAffected...)
		for j, pid := range affected {
			l, ok := leaves[pid]
			if !ok {
				return nil, fmt.Errorf("csaf: %w: %s: vulnerabilities[%d].product_status: product %q is not in the product_tree (item %d)", ErrInvalid, id, i, pid, j)
			}
			p := Product{Name: l.p.Name, Vendor: l.vendor, Model: l.model, VersionRange: l.versionRange,
				Fixed: fixed[norm(l.vendor)+"/"+norm(l.model)]}
			if l.version != "" {
				p.Versions = []string{l.version}
			}
			if h := l.p.Helper; h != nil {
				p.CPE, p.PURL, p.ModelNumbers = h.CPE, h.PURL, h.ModelNumbers
			}
			a.Products = append(a.Products, p)
		}
		if len(a.Products) > 0 {
			out = append(out, a)
		}
	}
	return out, nil
}

// cvssRating is the CVSS v3 qualitative rating of a base score.
func cvssRating(score float64) string {
	switch {
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	case score > 0:
		return Low
	}
	return Unknown
}

// ProviderMetadata is what discovery takes from a CSAF provider-metadata.json: where
// the advisories are listed.
type ProviderMetadata struct {
	Publisher   string
	Directories []string // directory_url distributions (index.txt lists the documents)
	Feeds       []string // ROLIE feed URLs
}

// ParseProviderMetadata reads a provider-metadata.json (at most limit bytes).
func ParseProviderMetadata(r io.Reader, limit int64) (*ProviderMetadata, error) {
	data, err := readBounded(r, limit, MaxCSAFSize, "csaf: provider metadata")
	if err != nil {
		return nil, err
	}
	var f struct {
		CanonicalURL  string                `json:"canonical_url"`
		Publisher     struct{ Name string } `json:"publisher"`
		Distributions []struct {
			DirectoryURL string `json:"directory_url"`
			ROLIE        *struct {
				Feeds []struct {
					URL string `json:"url"`
				} `json:"feeds"`
			} `json:"rolie"`
		} `json:"distributions"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("csaf: %w: not a provider-metadata.json: %v", ErrInvalid, err)
	}
	if f.CanonicalURL == "" {
		return nil, fmt.Errorf("csaf: %w: provider metadata has no canonical_url", ErrInvalid)
	}
	m := &ProviderMetadata{Publisher: f.Publisher.Name}
	for _, d := range f.Distributions {
		if d.DirectoryURL != "" {
			m.Directories = append(m.Directories, d.DirectoryURL)
		}
		if d.ROLIE != nil {
			for _, fd := range d.ROLIE.Feeds {
				if fd.URL != "" {
					m.Feeds = append(m.Feeds, fd.URL)
				}
			}
		}
	}
	if len(m.Directories)+len(m.Feeds) == 0 {
		return nil, fmt.Errorf("csaf: %w: provider metadata lists no distributions (directory_url or rolie feeds)", ErrInvalid)
	}
	return m, nil
}

// parseIndex reads a CSAF directory's index.txt: one document path per line,
// relative to the directory.
func parseIndex(data []byte) []string {
	var out []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// parseROLIE reads a ROLIE feed (RFC 8322, JSON): the documents' URLs (entry content
// src, or the entry's self link), each with the entry's "updated" time (zero when it
// has none). A malformed feed, an "updated" that is not RFC 3339 or more than 100000
// entries is an ErrInvalid.
func parseROLIE(data []byte) ([]change, error) {
	var f struct {
		Feed struct {
			Entry []struct {
				Link []struct {
					Rel  string `json:"rel"`
					Href string `json:"href"`
				} `json:"link"`
				Content struct {
					Src string `json:"src"`
				} `json:"content"`
				Updated string `json:"updated"`
			} `json:"entry"`
		} `json:"feed"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("csaf: %w: not a ROLIE feed: %v", ErrInvalid, err)
	}
	if len(f.Feed.Entry) > maxChanges {
		return nil, fmt.Errorf("csaf: %w: ROLIE feed lists more than %d entries", ErrInvalid, maxChanges)
	}
	var out []change
	for i, e := range f.Feed.Entry {
		u := e.Content.Src
		for _, l := range e.Link {
			if u == "" && l.Rel == "self" {
				u = l.Href
			}
		}
		if u == "" {
			continue
		}
		c := change{url: u}
		if e.Updated != "" {
			at, err := time.Parse(time.RFC3339, strings.TrimSpace(e.Updated))
			if err != nil {
				return nil, fmt.Errorf("csaf: %w: ROLIE entry %d: updated %q: want RFC 3339", ErrInvalid, i+1, clip(e.Updated))
			}
			c.at = at.UTC()
		}
		out = append(out, c)
	}
	return out, nil
}

// norm folds a name for comparison: lower case letters and digits only.
func norm(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
