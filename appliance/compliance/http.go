package compliance

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// Handler serves the compliance page, its exports and the per-cycle report. Routes and
// their permissions are in auth.AdminRoutes.
type Handler struct {
	b     *Builder
	pages httpapi.Renderer
	now   func() time.Time
	site  string
}

// NewHandler returns the handler; site names the appliance on the printed report.
func NewHandler(b *Builder, pages httpapi.Renderer, now func() time.Time, site string) *Handler {
	return &Handler{b: b, pages: pages, now: now, site: site}
}

// Register mounts the routes.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /compliance", h.withView(h.page("compliance.html")))
	mux.HandleFunc("GET /compliance/report", h.withView(h.page("compliance_report.html")))
	mux.HandleFunc("GET /compliance/report.pdf", h.withView(h.pdf))
	mux.HandleFunc("GET /api/v1/compliance", h.withReport(h.json))
	mux.HandleFunc("GET /api/v1/compliance.csv", h.withReport(h.csv))
}

// View is what the compliance templates get.
type View struct {
	*Report
	Site        string
	Cycle       string // 2026-03
	CoverageSVG template.HTML
	OverdueSVG  template.HTML
	TTPSVG      template.HTML
	Sections    []Section
}

// Section is a part of the printed report and the HIPAA Security Rule safeguard it
// evidences.
type Section struct {
	Title     string
	Safeguard string
	Evidence  string
}

// Sections maps the report to the HIPAA Security Rule (45 CFR Part 164, Subpart C).
var Sections = []Section{
	{"Patch coverage, time to patch and overdue assets", "§164.308(a)(1)(ii)(B) Risk management",
		"Known vulnerabilities are remediated by severity within the site's SLA; overdue and known-exploited items are tracked to closure, and exceptions carry compensating controls."},
	{"Updates verified and delivered; failed-update rate", "§164.308(a)(5)(ii)(B) Protection from malicious software",
		"Only vendor-signed updates verified against TUF metadata are served; rollouts stop when a ring fails."},
	{"Audit trail and approvals", "§164.312(b) Audit controls",
		"Every change, approval, deployment and login is a hash-chained, signed audit record kept six years."},
	{"Integrity of updates and of the record", "§164.312(c)(1) Integrity",
		"Update bytes are checked against signed hashes before serving; the audit chain and its checkpoints detect alteration."},
	{"Authentication of administrators", "§164.312(d) Person or entity authentication",
		"Local accounts with argon2id passwords and TOTP second factor for every role that can change anything; MFA coverage shown."},
}

func (h *Handler) build(r *http.Request) (*Report, string, error) {
	now := h.now()
	cycle := r.URL.Query().Get("cycle")
	var from, to time.Time
	if cycle != "" {
		t, err := time.ParseInLocation("2006-01", cycle, now.Location())
		if err != nil {
			return nil, "", fmt.Errorf("cycle: want a month like 2026-03, got %q", cycle)
		}
		from, to = t, t.AddDate(0, 1, 0)
	} else {
		y, m, _ := now.Date()
		from, to = time.Date(y, m, 1, 0, 0, 0, 0, now.Location()), now
		cycle = from.Format("2006-01")
	}
	rep, err := h.b.Build(r.Context(), now, from, to)
	return rep, cycle, err
}

// withReport builds the report the request asks for (answering 400 when it cannot)
// and hands it to serve with its cycle.
func (h *Handler) withReport(serve func(w http.ResponseWriter, rep *Report, cycle string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rep, cycle, err := h.build(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		serve(w, rep, cycle)
	}
}

// withView is withReport for the pages: the report with its charts and sections.
func (h *Handler) withView(serve func(w http.ResponseWriter, v *View)) http.HandlerFunc {
	return h.withReport(func(w http.ResponseWriter, rep *Report, cycle string) {
		serve(w, &View{Report: rep, Site: h.site, Cycle: cycle, Sections: Sections,
			CoverageSVG: LineChart("Patch coverage, last 12 months (%)", rep.CoverageTrend, 100, "%"),
			OverdueSVG:  BarChart("Overdue assets at each month end", rep.OverdueTrend, "#dc2626"),
			TTPSVG:      Distribution("Time to patch by severity", rep.TimeToPatch)})
	})
}

// page renders the view with the template name.
func (h *Handler) page(name string) func(http.ResponseWriter, *View) {
	return func(w http.ResponseWriter, v *View) { h.pages.Render(w, name, v) }
}

func (h *Handler) pdf(w http.ResponseWriter, v *View) {
	var buf bytes.Buffer
	if err := WritePDF(&buf, v); err != nil {
		http.Error(w, "compliance: pdf: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="patchgate-report-%s.pdf"`, v.Cycle))
	w.Write(buf.Bytes())
}

func (h *Handler) json(w http.ResponseWriter, rep *Report, _ string) {
	httpapi.WriteJSON(w, http.StatusOK, rep)
}

// csv writes the report as rows of section, key, metric, value.
func (h *Handler) csv(w http.ResponseWriter, rep *Report, cycle string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="patchgate-compliance-%s.csv"`, cycle))
	WriteCSV(w, rep)
}

// WriteCSV writes the report as CSV rows: section, key, metric, value.
func WriteCSV(w interface{ Write([]byte) (int, error) }, rep *Report) error {
	cw := csv.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := strconv.Itoa
	cw.Write([]string{"section", "key", "metric", "value"})
	for _, g := range []struct {
		name string
		cs   []Coverage
	}{{"coverage_by_severity", rep.BySeverity}, {"coverage_by_ring", rep.ByRing}, {"coverage_by_segment", rep.BySegment}, {"coverage_by_type", rep.ByType}} {
		for _, c := range g.cs {
			cw.Write([]string{g.name, c.Key, "patched", i(c.Patched)})
			cw.Write([]string{g.name, c.Key, "total", i(c.Total)})
			cw.Write([]string{g.name, c.Key, "percent", f(c.Percent)})
		}
	}
	cw.Write([]string{"within_sla", "", "percent", f(rep.WithinSLA.Percent)})
	for _, d := range rep.TimeToPatch {
		cw.Write([]string{"time_to_patch", d.Severity, "count", i(d.Count)})
		cw.Write([]string{"time_to_patch", d.Severity, "median_hours", f(d.MedianH)})
		cw.Write([]string{"time_to_patch", d.Severity, "p90_hours", f(d.P90H)})
	}
	for _, b := range rep.OverdueAges {
		cw.Write([]string{"overdue_by_age", b.Label, "count", i(b.Count)})
	}
	cw.Write([]string{"known_exploited", "", "open", i(rep.KEVOpen)})
	cw.Write([]string{"known_exploited", "", "past_due", i(rep.KEVPastDue)})
	cw.Write([]string{"excused", "", "count", i(len(rep.Excused))})
	if v := rep.Vulnerabilities; v != nil {
		for _, c := range v.Open {
			cw.Write([]string{"vulnerabilities_open", c.Severity, "count", i(c.Open)})
			cw.Write([]string{"vulnerabilities_open", c.Severity, "exploited", i(c.Exploited)})
			cw.Write([]string{"vulnerabilities_open", c.Severity, "past_due", i(c.PastDue)})
			for _, b := range c.Ages {
				cw.Write([]string{"vulnerabilities_open_by_age", c.Severity + " " + b.Label, "count", i(b.Count)})
			}
		}
		cw.Write([]string{"vulnerabilities_closed", "", "count", i(len(v.Closed))})
	}
	for _, rt := range rep.FailedRate {
		cw.Write([]string{"failed_update_rate", rt.Ring, "percent", f(rt.Percent)})
	}
	for _, e := range rep.Exceptions {
		cw.Write([]string{"open_exceptions", strconv.FormatInt(e.ID, 10), "age_days", f(float64(int(rep.Now.Sub(e.RequestedAt).Hours() / 24)))})
		cw.Write([]string{"open_exceptions", strconv.FormatInt(e.ID, 10), "expires", e.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	cw.Write([]string{"approval_latency", "", "median_hours", f(rep.ApprovalMed)})
	cw.Write([]string{"approval_latency", "", "p90_hours", f(rep.ApprovalP90)})
	cw.Write([]string{"mfa_coverage", "", "percent", f(rep.MFAPercent)})
	if rep.ApprovalPolicy != "" {
		cw.Write([]string{"approval_policy", rep.ApprovalPolicy, "self_approvals", i(len(rep.SelfApprovals))})
		cw.Write([]string{"approval_policy", rep.ApprovalPolicy, "reviews_overdue", i(len(rep.ReviewsOverdue))})
	}
	for _, p := range rep.CoverageTrend {
		cw.Write([]string{"coverage_trend", p.Label, "percent", f(p.Value)})
	}
	for _, p := range rep.OverdueTrend {
		cw.Write([]string{"overdue_trend", p.Label, "count", f(p.Value)})
	}
	cw.Flush()
	return cw.Error()
}
