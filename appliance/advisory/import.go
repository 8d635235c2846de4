package advisory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// ImportResult says what an import stored.
type ImportResult struct {
	Source     string `json:"source"`
	Advisories int    `json:"advisories"`
	KEV        int    `json:"kev_entries"`
	// ScoreErrors name the advisories whose CVSS vector does not parse: they are
	// kept, with the severity the file states (or unknown).
	ScoreErrors []string `json:"score_errors,omitempty"`
}

var importNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Import takes the same files the feeds deliver, for sites that fetch them elsewhere:
// a KEV catalog, an OSV record (or a JSON list of them), or a zip of OSV records (an
// osv.dev export) and CSAF advisories — each CSAF document with its NAME.asc signature
// by a pinned key (a csaf feed's, or import_key_file) and, when present, its
// NAME.sha256. A bare CSAF document is refused as unsigned. name (the file's name)
// names the import: a later import of the same name replaces it. Nothing is stored
// unless all of it is good; then the inventory is matched again.
func (s *Service) Import(ctx context.Context, name string, data []byte) (ImportResult, error) {
	res, err := s.doImport(ctx, name, data)
	if err != nil {
		s.met.imports.WithLabelValues("refused").Inc()
		return res, err
	}
	s.met.imports.WithLabelValues("ok").Inc()
	s.MatchSoon()
	return res, nil
}

func (s *Service) doImport(ctx context.Context, name string, data []byte) (ImportResult, error) {
	name = importNameRE.ReplaceAllString(path.Base(name), "_")
	if name == "" || name == "." || name == "_" {
		name = "import"
	}
	res := ImportResult{Source: "import:" + name}
	if int64(len(data)) > int64(s.sec.MaxSize) {
		return res, refuse(ReasonTooLarge, "import %s: %d bytes, more than max_size %d", name, len(data), int64(s.sec.MaxSize))
	}
	d := Data{Kind: "import"}
	var err error
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		err = s.importZip(name, data, &d)
	} else {
		err = s.importJSON(name, data, nil, &d)
	}
	if err != nil {
		return res, err
	}
	if len(d.Advisories)+len(d.KEV) == 0 {
		return res, refuse(ReasonMalformed, "import %s: no advisories in it", name)
	}
	if len(d.KEV) > 0 && d.Version == "" {
		d.Version = name
	}
	if err := saveData(ctx, s.db, res.Source, d, s.opts.Clock.Now()); err != nil {
		return res, fmt.Errorf("advisory: import %s: %w", name, err)
	}
	res.Advisories, res.KEV, res.ScoreErrors = len(d.Advisories), len(d.KEV), scoreErrors(d)
	s.tookKEV(ctx, d)
	return res, nil
}

// sniff says what a JSON file is: kev, csaf, osv or osv-list.
func sniff(data []byte) string {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if bytes.HasPrefix(t, []byte("[")) {
		return "osv-list"
	}
	var probe struct {
		Vulnerabilities json.RawMessage `json:"vulnerabilities"`
		CatalogVersion  *string         `json:"catalogVersion"`
		Document        json.RawMessage `json:"document"`
		ID              *string         `json:"id"`
	}
	if json.Unmarshal(t, &probe) != nil {
		return ""
	}
	switch {
	case probe.Document != nil:
		return KindCSAF
	case probe.CatalogVersion != nil || (probe.Vulnerabilities != nil && probe.ID == nil):
		return KindKEV
	case probe.ID != nil:
		return KindOSV
	}
	return ""
}

// importJSON adds one JSON file to d. sig and sum are a CSAF document's signature and
// .sha256 (nil when there are none).
func (s *Service) importJSON(name string, data []byte, side map[string][]byte, d *Data) error {
	limit := int64(s.sec.MaxSize)
	switch sniff(data) {
	case KindKEV:
		k, err := ParseKEV(bytes.NewReader(data), limit)
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		d.KEV = append(d.KEV, kevData(k).KEV...)
	case KindCSAF:
		sig, sum := side[name+".asc"], side[name+".sha256"]
		advs, err := verifyCSAF("import "+name, data, sum, sig, s.importKeys, s.opts.Clock.Now(), limit)
		if err != nil {
			return err
		}
		d.Advisories = append(d.Advisories, advs...)
	case KindOSV:
		advs, err := ParseOSV(bytes.NewReader(data), limit)
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		d.Advisories = append(d.Advisories, advs...)
	case "osv-list":
		var recs []json.RawMessage
		if err := json.Unmarshal(data, &recs); err != nil {
			return fmt.Errorf("import %s: %w: not a JSON list of OSV records: %v", name, ErrInvalid, err)
		}
		for i, r := range recs {
			advs, err := ParseOSV(bytes.NewReader(r), limit)
			if err != nil {
				return fmt.Errorf("import %s[%d]: %w", name, i, err)
			}
			d.Advisories = append(d.Advisories, advs...)
		}
	default:
		return fmt.Errorf("import %s: %w: not a KEV catalog, CSAF advisory or OSV record", name, ErrInvalid)
	}
	return nil
}

// importZip adds every .json file of a zip archive, CSAF ones with their .asc and
// .sha256 from the same archive.
func (s *Service) importZip(name string, data []byte, d *Data) error {
	files := map[string][]byte{}
	var names []string
	err := zipFiles(data, int64(s.sec.MaxSize), func(n string, body []byte) error {
		files[n] = body
		if strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := s.importJSON(n, files[n], files, d); err != nil {
			return err
		}
	}
	return nil
}
