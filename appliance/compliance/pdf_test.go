package compliance

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeFindings []Finding

func (f fakeFindings) ComplianceFindings(context.Context) ([]Finding, error) { return f, nil }

// findingsFixture: open findings of each age and severity, one exploited and past due,
// one closed in the period by a release, one closed before it.
func findingsFixture() fakeFindings {
	return fakeFindings{
		{AssetID: "a1", Asset: "printer-1", Vuln: "CVE-2026-1001", Severity: "critical", Exploited: true, FirstSeen: day(-3), Deadline: day(-1)},
		{AssetID: "a2", Asset: "ws-1", Vuln: "CVE-2026-2002", Severity: "high", FirstSeen: day(-20), Deadline: day(10)},
		{AssetID: "a3", Asset: "cabinet-1", Vuln: "CVE-2026-3003", Severity: "unknown", FirstSeen: day(-100)},
		{AssetID: "a2", Asset: "ws-1", Vuln: "CVE-2026-0999", Severity: "medium", FirstSeen: day(-30), ClosedAt: day(-5), Release: "openssl-3.0.15", ReleaseID: "7"},
		{AssetID: "a2", Asset: "ws-1", Vuln: "CVE-2025-0001", Severity: "low", FirstSeen: day(-90), ClosedAt: day(-60), Release: "old"},
	}
}

func TestVulnerabilityPDFTables(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	tests := []struct {
		name    string
		fs      fakeFindings
		nilPart bool
		summary string
		sevRows map[string]string // severity → row joined by "|"
		open    []string          // first cells
		closed  []string          // rows joined by "|"
	}{
		{"by severity and age, closed with release", findingsFixture(), false,
			"3 open vulnerability finding(s) (advisories matched to the inventory; ambiguous matches not counted), 1 exploited, 1 past their deadline; 1 closed in the period.",
			map[string]string{
				"critical": "critical|1|1|1|1|0|0|0",
				"high":     "high|1|0|0|0|1|0|0",
				"unknown":  "unknown|1|0|0|0|0|0|1",
				"low":      "low|0|0|0|0|0|0|0",
			},
			[]string{"cabinet-1", "ws-1", "printer-1"},
			[]string{"ws-1|CVE-2026-0999|medium|2026-02-18|2026-03-15|openssl-3.0.15"}},
		{"none", fakeFindings{}, false, "0 open vulnerability finding(s)", map[string]string{"critical": "critical|0|0|0|0|0|0|0"}, nil, nil},
		{"no advisory intake", nil, true, "", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fixture()
			if tt.fs != nil {
				b.Findings = tt.fs
			}
			r, err := b.Build(context.Background(), now, from, now)
			if err != nil {
				t.Fatal(err)
			}
			vt := vulnTables(r.Vulnerabilities, day)
			if tt.nilPart {
				if vt != nil {
					t.Fatalf("vulnTables = %+v, want nil without findings source", vt)
				}
				return
			}
			if !strings.HasPrefix(vt.summary, tt.summary) {
				t.Errorf("summary %q, want %q", vt.summary, tt.summary)
			}
			if got := strings.Join(vt.ageHead, ","); got != "0-7 days,8-30 days,31-90 days,over 90 days" {
				t.Errorf("age columns %s", got)
			}
			rows := map[string]string{}
			for _, r := range vt.bySeverity {
				rows[r[0]] = strings.Join(r, "|")
			}
			for sev, want := range tt.sevRows {
				if rows[sev] != want {
					t.Errorf("severity row %s = %q, want %q", sev, rows[sev], want)
				}
			}
			var open []string
			for _, r := range vt.open {
				open = append(open, r[0])
			}
			if strings.Join(open, ",") != strings.Join(tt.open, ",") {
				t.Errorf("open rows %v, want %v (oldest first)", open, tt.open)
			}
			var closed []string
			for _, r := range vt.closed {
				closed = append(closed, strings.Join(r, "|"))
			}
			if strings.Join(closed, "\n") != strings.Join(tt.closed, "\n") {
				t.Errorf("closed rows %v, want %v", closed, tt.closed)
			}
		})
	}
}

// TestVulnerabilityPDF: the PDF (uncompressed to read it) and the printed report carry
// the findings part; many open findings are listed up to the bound, then counted.
func TestVulnerabilityPDF(t *testing.T) {
	pdfCompression = false
	t.Cleanup(func() { pdfCompression = true })
	fs := findingsFixture()
	for i := range maxPDFFindings + 5 {
		fs = append(fs, Finding{AssetID: "m", Asset: "many", Vuln: fmt.Sprintf("CVE-2026-9%03d", i), Severity: "low", FirstSeen: day(-1)})
	}
	b := fixture()
	b.Findings = fs
	mux := handlerMux(t, b)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/compliance/report.pdf?cycle=2026-03", []string{"(Vulnerability findings)", "(CVE-2026-1001)", "(critical \\(KEV\\))", "(openssl-3.0.15)", "(and 8 more)"}},
		{"/compliance/report?cycle=2026-03", []string{`id="vulnerabilities"`, "CVE-2026-0999", "openssl-3.0.15"}},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		for _, w := range tt.want {
			if !bytes.Contains(rec.Body.Bytes(), []byte(w)) {
				t.Errorf("GET %s (%d) lacks %q", tt.path, rec.Code, w)
			}
		}
	}
}
