package compliance

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/web"
)

var now = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)

// fakeSource stands in for the rollout engine and inventory, whose stores are tested in
// their own packages; here the arithmetic of the report is under test.
type fakeSource struct {
	items []Item
	aps   []Approval
}

func (f fakeSource) Items(context.Context) ([]Item, error)         { return f.items, nil }
func (f fakeSource) Approvals(context.Context) ([]Approval, error) { return f.aps, nil }

type fakeMFA struct{ n, e int }

func (f fakeMFA) MFACoverage(context.Context) (int, int, error) { return f.n, f.e, nil }

func day(d int) time.Time { return now.AddDate(0, 0, d) }

func fixture() *Builder {
	items := []Item{
		// Critical: one patched in 24h, one patched late (after the 72h deadline), one overdue KEV.
		{Asset: "ws-1", AssetType: "workstation", Segment: "clinical", Ring: "pilot", Release: "r1", Severity: "critical", Since: day(-10), Deadline: day(-7), PatchedAt: day(-9), Attempts: 1},
		{Asset: "ws-2", AssetType: "workstation", Segment: "clinical", Ring: "core", Release: "r1", Severity: "critical", Since: day(-10), Deadline: day(-7), PatchedAt: day(-5), Attempts: 2, Failures: 1},
		{Asset: "robot-1", AssetType: "robot", Segment: "devices", Ring: "critical", Release: "r2", Severity: "critical", KnownExploited: true, Since: day(-40), Deadline: day(-37)},
		// High: one open, not yet due.
		{Asset: "prn-1", AssetType: "printer", Segment: "devices", Ring: "core", Release: "r3", Severity: "high", Since: day(-2), Deadline: day(5)},
		// Low: patched long ago (last year) - counts in coverage.
		{Asset: "pos-1", AssetType: "pos", Segment: "front", Ring: "core", Release: "r0", Severity: "low", Since: day(-200), Deadline: day(-110), PatchedAt: day(-150), Attempts: 1},
	}
	aps := []Approval{
		{Rollout: "1", Submitted: day(-10), Decided: day(-10).Add(4 * time.Hour)},
		{Rollout: "2", Submitted: day(-3), Decided: day(-3).Add(10 * time.Hour)},
		{Rollout: "0", Submitted: day(-100), Decided: day(-99)}, // outside the period
	}
	return &Builder{Source: fakeSource{items, aps}, MFA: fakeMFA{3, 2}}
}

func TestReportNumbers(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r, err := fixture().Build(context.Background(), now, from, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{
		"items":          float64(r.Items),
		"sla.patched":    float64(r.WithinSLA.Patched),
		"sla.total":      float64(r.WithinSLA.Total),
		"critical.cov":   r.BySeverity[0].Percent,
		"critical.total": float64(r.BySeverity[0].Total),
		"ttp.crit.n":     float64(r.TimeToPatch[0].Count),
		"ttp.crit.med":   r.TimeToPatch[0].MedianH,
		"ttp.crit.p90":   r.TimeToPatch[0].P90H,
		"overdue":        float64(len(r.Overdue)),
		"overdue.31-90":  float64(r.OverdueAges[2].Count),
		"kev.open":       float64(r.KEVOpen),
		"kev.pastdue":    float64(r.KEVPastDue),
		"approvals":      float64(r.ApprovalN),
		"approval.med":   r.ApprovalMed,
		"approval.p90":   r.ApprovalP90,
		"mfa":            r.MFAPercent,
	}
	want := map[string]float64{
		"items": 5, "sla.patched": 2, "sla.total": 4, "critical.cov": 66.7, "critical.total": 3,
		"ttp.crit.n": 2, "ttp.crit.med": 24, "ttp.crit.p90": 120,
		"overdue": 1, "overdue.31-90": 1, "kev.open": 1, "kev.pastdue": 1,
		"approvals": 2, "approval.med": 4, "approval.p90": 10, "mfa": 66.7,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	var rings []string
	for _, rt := range r.FailedRate {
		rings = append(rings, rt.Ring+":"+trimFloat(rt.Percent))
	}
	if diff := cmp.Diff([]string{"core:33.3", "pilot:0"}, rings); diff != "" {
		t.Errorf("failed-update rate (-want +got):\n%s", diff)
	}
	if len(r.CoverageTrend) != 12 || r.CoverageTrend[11].Value != 60 || r.OverdueTrend[11].Value != 1 {
		t.Errorf("trend ends %v / %v, want 60%% coverage and 1 overdue now", r.CoverageTrend[11], r.OverdueTrend[11])
	}
}

func TestChartsAreWellFormedSVG(t *testing.T) {
	r, _ := fixture().Build(context.Background(), now, time.Time{}, now)
	for name, svg := range map[string]string{
		"line":         string(LineChart("c <&>", r.CoverageTrend, 100, "%")),
		"bar":          string(BarChart("o", r.OverdueTrend, "#f00")),
		"distribution": string(Distribution("t", r.TimeToPatch)),
		"empty":        string(BarChart("e", nil, "#f00")),
	} {
		dec := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s chart is not well-formed XML: %v", name, err)
				break
			}
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") || strings.Contains(svg, "<script") || strings.Contains(svg, "http://") && !strings.Contains(svg, "xmlns=\"http://www.w3.org/2000/svg\"") {
			t.Errorf("%s chart has NaN, Inf, a script or an external reference", name)
		}
	}
}

// handlerMux serves b's pages as of now.
func handlerMux(t *testing.T, b *Builder) *http.ServeMux {
	t.Helper()
	pages, err := web.NewPages(nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(b, pages, func() time.Time { return now }, "Test Pharmacy").Register(mux)
	return mux
}

func TestPagesAndExports(t *testing.T) {
	mux := handlerMux(t, fixture())
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/compliance", []string{"<svg", "Coverage over the last 12 months", "66.7%", "robot-1"[:0]}},
		{"/compliance/report?cycle=2026-03", []string{"§164.308(a)(1)", "§164.308(a)(5)", "§164.312(b)", "§164.312(c)", "§164.312(d)", "robot-1", "Test Pharmacy"}},
		{"/api/v1/compliance", []string{`"kev_past_due": 1`}},
		{"/api/v1/compliance.csv", []string{"coverage_by_severity,critical,percent,66.7", "mfa_coverage,,percent,66.7"}},
		{"/compliance?cycle=bad", []string{"cycle: want a month"}},
		{"/compliance/report.pdf?cycle=2026-03", []string{"%PDF-1.", "%%EOF"}},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		body := rec.Body.String()
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s (%d) lacks %q", tt.path, rec.Code, w)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "src=\"http") {
			t.Errorf("GET %s loads something external", tt.path)
		}
	}
	var buf bytes.Buffer
	r, _ := fixture().Build(context.Background(), now, time.Time{}, now)
	WriteCSV(&buf, r)
	if _, err := csv.NewReader(&buf).ReadAll(); err != nil {
		t.Errorf("CSV does not parse: %v", err)
	}
}

type fakeExcuser struct{ asset string }

func (f fakeExcuser) ExcusedItem(_ context.Context, it Item) (bool, error) {
	return it.Asset == f.asset, nil
}

func TestExcusedItemsAreNotOverdue(t *testing.T) {
	b := fixture()
	b.Excuser = fakeExcuser{"robot-1"}
	r, err := b.Build(context.Background(), now, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Overdue) != 0 || r.KEVOpen != 0 || len(r.Excused) != 1 || r.Excused[0].Asset != "robot-1" {
		t.Errorf("with robot-1 excused: overdue %d, KEV open %d, excused %v; want 0, 0, [robot-1]", len(r.Overdue), r.KEVOpen, r.Excused)
	}
}
