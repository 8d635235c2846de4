package appliance

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/web"
)

// TestExposurePage draws the exposure page and the per-asset list: an unscored
// finding shows its score error (escaped), and ambiguous matches are listed apart
// with their reason, never among the open findings.
func TestExposurePage(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	open := advisory.Finding{Match: advisory.Match{AssetID: "a1", Asset: "label-printer", Vuln: "CVE-2026-1001", Severity: "high", CVSS: 8.1,
		Evidence: "zebra ZEBRA-2026-001: firmware V75.20.01Z is listed"}, FirstSeen: at, Deadline: at.Add(72 * time.Hour)}
	unscored := advisory.Finding{Match: advisory.Match{AssetID: "a2", Asset: "rx-ws-01", Vuln: "CVE-2026-2002", Severity: "unknown",
		ScoreError: `advisory DSA-1 (document d.json): cvss: vector "<script>alert(1)</script>" does not parse`,
		Evidence:   "osv DSA-1: openssl 3.0.11 is in the range"}, FirstSeen: at, Deadline: at.Add(30 * 24 * time.Hour)}
	ambiguous := advisory.Finding{Match: advisory.Match{AssetID: "a1", Asset: "label-printer", Vuln: "CVE-2026-1005", Severity: "medium", Ambiguous: true,
		Evidence: "zebra Z2: version range vers:conan/<1.0 not evaluated: vers: versioning scheme not supported"}, FirstSeen: at}
	tests := []struct {
		name       string
		e          advisory.Exposure
		want, lack []string
	}{
		{"all devices", advisory.Exposure{Now: at, Findings: []advisory.Finding{open, unscored, ambiguous},
			Assets: []advisory.AssetExposure{{AssetID: "a1", Asset: "label-printer", Open: 1, Ambiguous: 1, BySeverity: map[string]int{"high": 1}}}},
			[]string{"<h1>Exposure</h1>", `href="/exposure?asset=a1"`, "high (8.1)",
				`unscored: advisory DSA-1 (document d.json): cvss: vector &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34; does not parse`,
				`<table id="ambiguous">`, "shown and never counted", "vers:conan/&lt;1.0 not evaluated: vers: versioning scheme not supported"},
			[]string{"<script>", "No ambiguous matches."}},
		{"one device", advisory.Exposure{Now: at, AssetID: "a1", Findings: []advisory.Finding{open, ambiguous},
			Assets: []advisory.AssetExposure{{AssetID: "a1", Asset: "label-printer", Open: 1, Ambiguous: 1}}},
			[]string{"<h1>Exposure of label-printer</h1>", `href="/api/v1/exposure/a1"`, "CVE-2026-1001", "CVE-2026-1005"},
			[]string{"rx-ws-01", "No open findings."}},
		{"one device without findings", advisory.Exposure{Now: at, AssetID: "a9", Assets: []advisory.AssetExposure{}},
			[]string{"<h1>Exposure of device a9</h1>", "No open findings.", "No ambiguous matches."}, nil},
	}
	p, err := web.NewPages(panelStatus{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			p.Render(rec, "exposure.html", auth.Page{Data: &tt.e})
			body := rec.Body.String()
			if rec.Code != 200 {
				t.Fatalf("render = %d\n%s", rec.Code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, l := range tt.lack {
				if strings.Contains(body, l) {
					t.Errorf("page has %q", l)
				}
			}
			// The ambiguous finding is in its own table, not among the open ones.
			opens, _, _ := strings.Cut(body, `<table id="ambiguous">`)
			if strings.Contains(opens, "CVE-2026-1005") {
				t.Errorf("ambiguous CVE-2026-1005 listed among the open findings")
			}
		})
	}
}
