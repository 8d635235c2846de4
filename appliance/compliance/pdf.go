package compliance

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-pdf/fpdf"
)

// pdfCompression compresses the PDF's page streams (tests turn it off to read the text).
var pdfCompression = true

// WritePDF writes the per-cycle completion report as a PDF (A4, the PDF core fonts, no
// external resources): the HIPAA mapping, the figures of each section and the coverage
// trend as a bar chart. The HTML report (/compliance/report) has the same content.
func WritePDF(w io.Writer, v *View) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(pdfCompression)
	pdf.SetCreationDate(v.Now)
	pdf.SetCatalogSort(true)
	pdf.SetTitle("Patch completion report "+v.Cycle, true)
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 to the core fonts' cp1252
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.CellFormat(0, 5, tr(fmt.Sprintf("Patchgate · %s · cycle %s · page %d", v.Site, v.Cycle, pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	pageW, _ := pdf.GetPageSize()
	width := pageW - 30

	h1 := func(s string) {
		pdf.SetFont("Helvetica", "B", 16)
		pdf.MultiCell(0, 8, tr(s), "", "L", false)
	}
	h2 := func(s, safeguard string) {
		pdf.Ln(4)
		pdf.SetFont("Helvetica", "B", 12)
		pdf.CellFormat(0, 7, tr(s), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(0, 7, tr(safeguard), "", 1, "R", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	}
	text := func(s string) {
		pdf.SetFont("Helvetica", "", 10)
		pdf.MultiCell(0, 5, tr(s), "", "L", false)
	}
	table := func(cols []float64, head []string, rows [][]string) {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetFillColor(235, 238, 243)
		for i, h := range head {
			pdf.CellFormat(cols[i]*width, 6, tr(h), "B", 0, "L", true, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("Helvetica", "", 9)
		if len(rows) == 0 {
			pdf.CellFormat(width, 6, "None.", "", 1, "L", false, 0, "")
		}
		for _, r := range rows {
			for i, c := range r {
				pdf.CellFormat(cols[i]*width, 5.5, tr(c), "", 0, "L", false, 0, "")
			}
			pdf.Ln(-1)
		}
	}
	f1 := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

	h1("Patch completion report — " + v.Cycle)
	text(fmt.Sprintf("%s · period %s to %s · generated %s by Patchgate. Names devices and staff only; no patient data.",
		v.Site, day(v.From), day(v.To), day(v.Now)))
	pdf.Ln(2)
	var rows [][]string
	for _, s := range v.Sections {
		rows = append(rows, []string{s.Title, s.Safeguard})
	}
	table([]float64{0.55, 0.45}, []string{"Section", "HIPAA Security Rule safeguard"}, rows)

	h2("1. Risk management", "§164.308(a)(1)(ii)(B)")
	text(fmt.Sprintf("%s%% of due items patched within SLA (%d of %d); %d overdue; %d known-exploited open, %d past due; %d open exceptions excusing %d item(s).",
		f1(v.WithinSLA.Percent), v.WithinSLA.Patched, v.WithinSLA.Total, len(v.Overdue), v.KEVOpen, v.KEVPastDue, len(v.Exceptions), len(v.Excused)))
	rows = nil
	for _, g := range []struct {
		name string
		cs   []Coverage
	}{{"severity", v.BySeverity}, {"ring", v.ByRing}, {"segment", v.BySegment}, {"device type", v.ByType}} {
		for _, c := range g.cs {
			rows = append(rows, []string{g.name, c.Key, fmt.Sprintf("%d / %d", c.Patched, c.Total), f1(c.Percent) + "%"})
		}
	}
	table([]float64{0.2, 0.4, 0.2, 0.2}, []string{"Coverage by", "", "Patched", ""}, rows)
	pdf.Ln(2)
	rows = nil
	for _, d := range v.TimeToPatch {
		rows = append(rows, []string{d.Severity, strconv.Itoa(d.Count), f1(d.MedianH) + " h", f1(d.P90H) + " h"})
	}
	table([]float64{0.25, 0.25, 0.25, 0.25}, []string{"Time to patch", "Patched", "Median", "p90"}, rows)
	pdf.Ln(2)
	barChart(pdf, tr, "Patch coverage at each month end (%)", v.CoverageTrend, 100, width)
	rows = nil
	for _, it := range v.Overdue {
		sev := it.Severity
		if it.KnownExploited {
			sev += " (KEV)"
		}
		rows = append(rows, []string{it.Asset, it.Release, sev, day(it.Deadline)})
	}
	pdf.Ln(2)
	table([]float64{0.25, 0.35, 0.15, 0.25}, []string{"Overdue asset", "Release", "Severity", "Deadline"}, rows)
	rows = nil
	for _, e := range v.Exceptions {
		rows = append(rows, []string{strconv.FormatInt(e.ID, 10), e.Scope, e.Target, e.State, day(e.ExpiresAt)})
	}
	pdf.Ln(2)
	table([]float64{0.08, 0.27, 0.25, 0.15, 0.25}, []string{"#", "Exception scope", "For", "State", "Expires"}, rows)
	if vt := vulnTables(v.Vulnerabilities, day); vt != nil {
		pdf.Ln(4)
		pdf.SetFont("Helvetica", "B", 11)
		pdf.CellFormat(0, 7, tr("Vulnerability findings"), "", 1, "L", false, 0, "")
		text(vt.summary)
		ages := make([]float64, len(vt.ageHead))
		for i := range ages {
			ages[i] = 0.48 / float64(len(ages))
		}
		table(append([]float64{0.16, 0.12, 0.12, 0.12}, ages...), append([]string{"Severity", "Open", "Exploited", "Past due"}, vt.ageHead...), vt.bySeverity)
		pdf.Ln(2)
		table([]float64{0.2, 0.2, 0.16, 0.22, 0.22}, []string{"Open finding", "Vulnerability", "Severity", "Open since", "Deadline"}, vt.open)
		pdf.Ln(2)
		table([]float64{0.18, 0.18, 0.12, 0.17, 0.17, 0.18}, []string{"Closed finding", "Vulnerability", "Severity", "Open since", "Closed", "Closed by release"}, vt.closed)
	}

	h2("2. Protection from malicious software", "§164.308(a)(5)(ii)(B)")
	rows = nil
	for _, r := range v.FailedRate {
		rows = append(rows, []string{r.Ring, strconv.Itoa(r.Attempts), strconv.Itoa(r.Failures), f1(r.Percent) + "%"})
	}
	table([]float64{0.25, 0.25, 0.25, 0.25}, []string{"Ring", "Attempts", "Failed", "Rate"}, rows)

	h2("3. Audit controls", "§164.312(b)")
	text(fmt.Sprintf("%d rollout approvals decided in the period; median latency %s h, p90 %s h. The audit trail is exported with "+
		"patchgate audit export --from %s --to %s.", v.ApprovalN, f1(v.ApprovalMed), f1(v.ApprovalP90), v.From.Format("2006-01-02"), v.To.Format("2006-01-02")))
	policy := v.ApprovalPolicy
	if policy == "" {
		policy = "two_person"
	}
	text(fmt.Sprintf("Approval policy: %s. %d self-approval(s) in the period or waiting for a countersignature; %d review(s) overdue.",
		policy, len(v.SelfApprovals), len(v.ReviewsOverdue)))
	rows = nil
	for _, rv := range v.SelfApprovals {
		signed := "waiting"
		if rv.CountersignedBy != "" {
			signed = rv.CountersignedBy + " " + day(rv.CountersignedAt)
		}
		if rv.Overdue {
			signed += " (overdue)"
		}
		rows = append(rows, []string{strconv.FormatInt(rv.ID, 10), rv.Rollout, rv.ApprovedBy + " " + day(rv.ApprovedAt), day(rv.DueAt), signed})
	}
	table([]float64{0.08, 0.27, 0.25, 0.15, 0.25}, []string{"#", "Self-approved rollout", "By", "Due", "Countersigned"}, rows)

	h2("4. Integrity", "§164.312(c)(1)")
	text("Every served update was verified against its signed TUF metadata before it reached a device. The audit chain and its signed checkpoints are checked with patchgate audit verify.")

	h2("5. Authentication", "§164.312(d)")
	text(fmt.Sprintf("%d of %d accounts that can change anything have a second factor (%s%%).", v.MFAEnrolled, v.MFANeeded, f1(v.MFAPercent)))

	return pdf.Output(w)
}

// barChart draws points as bars under a title, y from 0 to maxV.
func barChart(pdf *fpdf.Fpdf, tr func(string) string, title string, pts []Point, maxV, width float64) {
	pdf.SetFont("Helvetica", "B", 9)
	pdf.CellFormat(0, 6, tr(title), "", 1, "L", false, 0, "")
	h := 30.0
	x0, y0 := pdf.GetX(), pdf.GetY()
	if y0+h+10 > 280 {
		pdf.AddPage()
		x0, y0 = pdf.GetX(), pdf.GetY()
	}
	pdf.SetDrawColor(200, 200, 200)
	pdf.Line(x0, y0+h, x0+width, y0+h)
	slot := width / float64(max(len(pts), 1))
	pdf.SetFillColor(37, 99, 235)
	pdf.SetFont("Helvetica", "", 7)
	for i, p := range pts {
		bh := h * min(p.Value, maxV) / maxV
		x := x0 + slot*float64(i)
		pdf.Rect(x+slot*0.15, y0+h-bh, slot*0.7, bh, "F")
		pdf.SetXY(x, y0+h+1)
		pdf.CellFormat(slot, 3.5, tr(p.Label), "", 0, "C", false, 0, "")
		pdf.SetXY(x, y0+h-bh-4)
		pdf.CellFormat(slot, 3.5, strconv.FormatFloat(p.Value, 'f', 0, 64), "", 0, "C", false, 0, "")
	}
	pdf.SetXY(x0, y0+h+6)
}

// maxPDFFindings bounds the open findings the PDF lists one by one (the counts above
// them are complete; the JSON and CSV exports have them all).
const maxPDFFindings = 60

// vulnPDF is the PDF's vulnerability part as table rows.
type vulnPDF struct {
	summary      string
	ageHead      []string
	bySeverity   [][]string
	open, closed [][]string
}

// vulnTables lays out v for the PDF: open findings by severity and age, the open ones
// oldest first (at most maxPDFFindings, then a count of the rest), and those closed in
// the period with the release that closed them. Nil when the report has no findings
// part (no advisory intake).
func vulnTables(v *Vulnerabilities, day func(time.Time) string) *vulnPDF {
	if v == nil {
		return nil
	}
	out := &vulnPDF{}
	open, exploited, pastDue := 0, 0, 0
	for i, c := range v.Open {
		if i == 0 {
			for _, b := range c.Ages {
				out.ageHead = append(out.ageHead, b.Label)
			}
		}
		row := []string{c.Severity, strconv.Itoa(c.Open), strconv.Itoa(c.Exploited), strconv.Itoa(c.PastDue)}
		for _, b := range c.Ages {
			row = append(row, strconv.Itoa(b.Count))
		}
		out.bySeverity = append(out.bySeverity, row)
		open, exploited, pastDue = open+c.Open, exploited+c.Exploited, pastDue+c.PastDue
	}
	out.summary = fmt.Sprintf("%d open vulnerability finding(s) (advisories matched to the inventory; ambiguous matches not counted), %d exploited, %d past their deadline; %d closed in the period.",
		open, exploited, pastDue, len(v.Closed))
	sev := func(f Finding) string {
		if f.Exploited {
			return f.Severity + " (KEV)"
		}
		return f.Severity
	}
	for i, f := range v.Items {
		if i == maxPDFFindings {
			out.open = append(out.open, []string{fmt.Sprintf("and %d more", len(v.Items)-maxPDFFindings), "", "", "", ""})
			break
		}
		deadline := "—"
		if !f.Deadline.IsZero() {
			deadline = day(f.Deadline)
		}
		out.open = append(out.open, []string{f.Asset, f.Vuln, sev(f), day(f.FirstSeen), deadline})
	}
	for _, f := range v.Closed {
		rel := "—"
		if f.Release != "" {
			rel = f.Release
		}
		out.closed = append(out.closed, []string{f.Asset, f.Vuln, sev(f), day(f.FirstSeen), day(f.ClosedAt), rel})
	}
	return out
}
