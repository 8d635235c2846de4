package advisory

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestScoreVector(t *testing.T) {
	tests := []struct {
		name, vector string
		score        float64
		severity     string
		err          string
	}{
		{"v3.1 critical", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Critical, ""},
		{"v3.1 high", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, High, ""},
		{"v3.0 medium", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3, Medium, ""},
		{"v3.1 low", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8, Low, ""},
		{"v3.1 none counts as low", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, Low, ""},
		{"v4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, Critical, ""},
		{"v2 high by NVD's ratings", "AV:N/AC:L/Au:N/C:C/I:C/A:C", 10, High, ""},
		{"v2 in parentheses", "(AV:N/AC:L/Au:N/C:P/I:N/A:N)", 5, Medium, ""},
		{"surrounding space", "  CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n", 9.8, Critical, ""},
		{"not a vector", "x", 0, Unknown, `vector "x": not a CVSS`},
		{"missing metric", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", 0, Unknown, `vector "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"`},
		{"bad value", "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 0, Unknown, "AV:Q"},
		{"unknown version", "CVSS:5.0/AV:N", 0, Unknown, "not a CVSS"},
		{"enormous", "CVSS:3.1/" + strings.Repeat("A", 600), 0, Unknown, "more than 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, sev, err := ScoreVector(tt.vector)
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ScoreVector(%q) error = %v, want an ErrInvalid containing %q", tt.vector, err, tt.err)
				}
				return
			}
			if err != nil || score != tt.score || sev != tt.severity {
				t.Errorf("ScoreVector(%q) = %v, %s, %v; want %v, %s", tt.vector, score, sev, err, tt.score, tt.severity)
			}
		})
	}
}

// TestVectorDecidesSeverity: a valid vector decides an advisory's severity over what
// the feed states; a bad one is reported naming the advisory and the stated severity
// (or unknown) is kept.
func TestVectorDecidesSeverity(t *testing.T) {
	csaf := func(score string) string {
		return `{"document":{"csaf_version":"2.0","tracking":{"id":"DOC-1"}},"product_tree":{"full_product_names":[{"product_id":"P","name":"P","product_identification_helper":{"model_numbers":["P"]}}]},
 "vulnerabilities":[{"cve":"CVE-2026-0001","product_status":{"known_affected":["P"]},"scores":[{"products":["P"],` + score + `}]}]}`
	}
	osv := func(sev string) string {
		return `{"id":"GHSA-1","aliases":["CVE-2026-0002"],"severity":[` + sev + `],"database_specific":{"severity":"LOW"},
 "affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`
	}
	tests := []struct {
		name, kind, doc string
		severity        string
		cvss            float64
		scoreErr        string
	}{
		{"CSAF vector beats stated severity", "csaf", csaf(`"cvss_v3":{"baseSeverity":"LOW","baseScore":2,"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}`), Critical, 9.8, ""},
		{"CSAF vector alone", "csaf", csaf(`"cvss_v3":{"vectorString":"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"}`), Medium, 5.3, ""},
		{"CSAF v2 vector", "csaf", csaf(`"cvss_v2":{"vectorString":"AV:N/AC:L/Au:N/C:C/I:C/A:C"}`), High, 10, ""},
		{"CSAF bad vector keeps stated", "csaf", csaf(`"cvss_v3":{"baseSeverity":"MEDIUM","vectorString":"x"}`), Medium, 0,
			`advisory CVE-2026-0001 (document DOC-1): cvss: invalid: vector "x"`},
		{"CSAF bad vector alone: unknown", "csaf", csaf(`"cvss_v3":{"vectorString":"CVSS:3.1/AV:N"}`), Unknown, 0, "advisory CVE-2026-0001 (document DOC-1)"},
		{"OSV CVSS_V3", "osv", osv(`{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}`), High, 8.1, ""},
		{"OSV CVSS_V4", "osv", osv(`{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}`), Critical, 9.3, ""},
		{"OSV worst of two vectors", "osv", osv(`{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"},{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}`), High, 8.1, ""},
		{"OSV bad vector keeps database severity", "osv", osv(`{"type":"CVSS_V3","score":"CVSS:3.1/nope"}`), Low, 0, "advisory GHSA-1 (document GHSA-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var advs []Advisory
			var err error
			if tt.kind == "csaf" {
				advs, err = ParseCSAF(strings.NewReader(tt.doc), 0)
			} else {
				advs, err = ParseOSV(strings.NewReader(tt.doc), 0)
			}
			if err != nil || len(advs) != 1 {
				t.Fatalf("parse = %+v, %v; want one advisory", advs, err)
			}
			a := advs[0]
			if a.Severity != tt.severity || a.CVSS != tt.cvss {
				t.Errorf("severity %s, cvss %v; want %s, %v", a.Severity, a.CVSS, tt.severity, tt.cvss)
			}
			if (tt.scoreErr == "") != (a.ScoreError == "") || !strings.Contains(a.ScoreError, tt.scoreErr) {
				t.Errorf("score error %q, want %q", a.ScoreError, tt.scoreErr)
			}
			// The finding carries the score, the vector and the error.
			ms := MatchAll([]Asset{{ID: "a", Name: "a", Model: "P", Firmware: "1", Ecosystem: "npm", Packages: []Package{{"x", "1.0.0"}}}},
				Corpus{"f": Data{Advisories: advs}})
			if len(ms) != 1 || ms[0].Severity != tt.severity || ms[0].CVSS != tt.cvss || ms[0].ScoreError != a.ScoreError {
				t.Errorf("matches = %+v", ms)
			}
		})
	}
}

// FuzzScoreVector: any string is scored or refused as ErrInvalid, never a panic; a
// score is within 0-10 with a severity.
func FuzzScoreVector(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A")
	f.Add("AV:N/AC:L/Au:N/C:C/I:C/A:C")
	f.Fuzz(func(t *testing.T, v string) {
		score, sev, err := ScoreVector(v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if score < 0 || score > 10 || sev == Unknown {
			t.Fatalf("ScoreVector(%q) = %v, %s", v, score, sev)
		}
		var s scoring
		s.add(v)
		var a Advisory
		s.apply(&a)
		if a.Severity != sev || !bytes.Equal([]byte(a.Vector), []byte(strings.TrimSpace(v))) {
			t.Fatalf("scoring %q gave %+v", v, a)
		}
	})
}
