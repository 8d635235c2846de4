package advisory

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// MaxOSVSize bounds one OSV record (or a query answer) by default.
const MaxOSVSize = 4 << 20

type osvRecord struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases"`
	Summary   string   `json:"summary"`
	Published string   `json:"published"`
	Withdrawn string   `json:"withdrawn"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
			PURL      string `json:"purl"`
		} `json:"package"`
		Ranges []struct {
			Type   string `json:"type"`
			Events []struct {
				Introduced   string `json:"introduced"`
				Fixed        string `json:"fixed"`
				LastAffected string `json:"last_affected"`
			} `json:"events"`
		} `json:"ranges"`
		Versions         []string `json:"versions"`
		DatabaseSpecific struct {
			Severity string `json:"severity"`
		} `json:"database_specific"`
	} `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
	References []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"references"`
}

// ParseOSV reads one OSV record (at most limit bytes; MaxOSVSize when ≤ 0). A withdrawn
// record gives nothing; a malformed one is an ErrInvalid naming the field.
func ParseOSV(r io.Reader, limit int64) ([]Advisory, error) {
	data, err := readBounded(r, limit, MaxOSVSize, "osv: record")
	if err != nil {
		return nil, err
	}
	var rec osvRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("osv: %w: not an OSV JSON record: %v", ErrInvalid, err)
	}
	a, err := rec.advisory()
	if err != nil || a == nil {
		return nil, err
	}
	return []Advisory{*a}, nil
}

func (rec *osvRecord) advisory() (*Advisory, error) {
	if rec.ID == "" {
		return nil, fmt.Errorf("osv: %w: record has no id", ErrInvalid)
	}
	if rec.Withdrawn != "" {
		return nil, nil
	}
	a := &Advisory{ID: rec.ID, Document: rec.ID, Title: rec.Summary, Severity: normSeverity(rec.DatabaseSpecific.Severity)}
	if cveRE.MatchString(rec.ID) {
		a.CVEs = append(a.CVEs, rec.ID)
	}
	for _, al := range rec.Aliases {
		if cveRE.MatchString(al) {
			a.CVEs = append(a.CVEs, al)
		}
	}
	a.Published, _ = time.Parse(time.RFC3339, rec.Published)
	var sc scoring
	for _, s := range rec.Severity {
		if strings.HasPrefix(s.Type, "CVSS") {
			sc.add(s.Score)
		} else if sev := normSeverity(s.Score); severityRank(sev) > severityRank(a.Severity) {
			a.Severity = sev
		}
	}
	for _, ref := range rec.References {
		if ref.Type == "ADVISORY" && a.URL == "" {
			a.URL = ref.URL
		}
	}
	for i, af := range rec.Affected {
		if af.Package.Name == "" || af.Package.Ecosystem == "" {
			return nil, fmt.Errorf("osv: %w: %s: affected[%d].package: want ecosystem and name", ErrInvalid, rec.ID, i)
		}
		p := Product{Ecosystem: af.Package.Ecosystem, Package: af.Package.Name, PURL: af.Package.PURL, Versions: af.Versions}
		if sev := normSeverity(af.DatabaseSpecific.Severity); severityRank(sev) > severityRank(a.Severity) {
			a.Severity = sev
		}
		for j, rg := range af.Ranges {
			if rg.Type == "GIT" {
				continue // commits, not versions an agent reports
			}
			if rg.Type != "ECOSYSTEM" && rg.Type != "SEMVER" {
				return nil, fmt.Errorf("osv: %w: %s: affected[%d].ranges[%d].type: want ECOSYSTEM, SEMVER or GIT, got %q", ErrInvalid, rec.ID, i, j, rg.Type)
			}
			var cur *Range
			for _, ev := range rg.Events {
				switch {
				case ev.Introduced != "":
					p.Ranges = append(p.Ranges, Range{Introduced: ev.Introduced})
					cur = &p.Ranges[len(p.Ranges)-1]
				case cur == nil:
					return nil, fmt.Errorf("osv: %w: %s: affected[%d].ranges[%d]: an event before any introduced", ErrInvalid, rec.ID, i, j)
				case ev.Fixed != "":
					cur.Fixed = ev.Fixed
					if p.Fixed == "" || CompareVersions(ev.Fixed, p.Fixed) > 0 {
						p.Fixed = ev.Fixed
					}
					cur = nil
				case ev.LastAffected != "":
					cur.LastAffected = ev.LastAffected
					cur = nil
				}
			}
		}
		a.Products = append(a.Products, p)
	}
	sc.apply(a)
	return a, nil
}

// parseOSVQuery reads an OSV API answer to POST /v1/query: {"vulns": [records]}.
func parseOSVQuery(data []byte) ([]Advisory, error) {
	var q struct {
		Vulns []osvRecord `json:"vulns"`
	}
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("osv: %w: not an OSV query answer: %v", ErrInvalid, err)
	}
	var out []Advisory
	for _, rec := range q.Vulns {
		a, err := rec.advisory()
		if err != nil {
			return nil, err
		}
		if a != nil {
			out = append(out, *a)
		}
	}
	return out, nil
}

// zipLimits bound an imported archive: files, and bytes all told once uncompressed.
const (
	maxZipFiles = 200000
	maxZipTotal = 2 << 30
)

// zipFiles reads the regular files of a zip archive (data), each at most limit bytes,
// calling each with the file's name. Bombs are refused: more than maxZipFiles files or
// maxZipTotal bytes uncompressed.
func zipFiles(data []byte, limit int64, each func(name string, body []byte) error) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("import: %w: not a zip archive: %v", ErrInvalid, err)
	}
	if len(zr.File) > maxZipFiles {
		return fmt.Errorf("import: %w: archive has %d files, more than %d", ErrInvalid, len(zr.File), maxZipFiles)
	}
	var total int64
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasPrefix(path.Base(f.Name), ".") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("import: %w: %s: %v", ErrInvalid, f.Name, err)
		}
		body, err := readBounded(rc, limit, MaxCSAFSize, "import: "+f.Name)
		rc.Close()
		if err != nil {
			return err
		}
		if total += int64(len(body)); total > maxZipTotal {
			return fmt.Errorf("import: %w: archive larger than %d bytes uncompressed", ErrInvalid, int64(maxZipTotal))
		}
		if err := each(f.Name, body); err != nil {
			return err
		}
	}
	return nil
}
