package compliance

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// The charts are small hand-made SVGs: no scripts, no external fonts or styles, readable
// when printed. Each has a <title> for screen readers.

const (
	chartW, chartH = 640, 220
	padL, padR     = 44, 12
	padT, padB     = 16, 36
)

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" class="chart" font-family="sans-serif" font-size="11"><title>%s</title>`,
		chartW, chartH, html.EscapeString(title))
}

func axes(b *strings.Builder, maxV float64, unit string) {
	plotH := float64(chartH - padT - padB)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		y := float64(padT) + plotH - plotH*float64(i)/4
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s%s</text>`, padL-4, y+4, trimFloat(v), unit)
	}
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// LineChart draws points as a line with dots, y from 0 to maxV (0: the data's max).
func LineChart(title string, pts []Point, maxV float64, unit string) template.HTML {
	if maxV <= 0 {
		maxV = niceMax(pts)
	}
	var b strings.Builder
	svgOpen(&b, title)
	axes(&b, maxV, unit)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	step := plotW / float64(max(len(pts)-1, 1))
	var path []string
	for i, p := range pts {
		x := float64(padL) + step*float64(i)
		y := float64(padT) + plotH - plotH*math.Min(p.Value, maxV)/maxV
		path = append(path, fmt.Sprintf("%.1f,%.1f", x, y))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#2563eb"><title>%s: %s%s</title></circle>`, x, y, html.EscapeString(p.Label), trimFloat(p.Value), unit)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`, x, chartH-padB+16, html.EscapeString(p.Label))
	}
	if len(path) > 0 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#2563eb" stroke-width="2"/>`, strings.Join(path, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// BarChart draws one bar per point.
func BarChart(title string, pts []Point, color string) template.HTML {
	maxV := niceMax(pts)
	var b strings.Builder
	svgOpen(&b, title)
	axes(&b, maxV, "")
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	slot := plotW / float64(max(len(pts), 1))
	for i, p := range pts {
		h := plotH * p.Value / maxV
		x := float64(padL) + slot*float64(i) + slot*0.15
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x, float64(padT)+plotH-h, slot*0.7, h, color, html.EscapeString(p.Label), trimFloat(p.Value))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`, x+slot*0.35, chartH-padB+16, html.EscapeString(p.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func niceMax(pts []Point) float64 {
	m := 0.0
	for _, p := range pts {
		m = math.Max(m, p.Value)
	}
	if m <= 0 {
		return 4
	}
	mag := math.Pow(10, math.Floor(math.Log10(m)))
	for _, f := range []float64{1, 2, 2.5, 5, 10} {
		if f*mag >= m {
			return f * mag
		}
	}
	return 10 * mag
}

// ttpBuckets are the time-to-patch ranges of the distribution chart.
var ttpBuckets = []struct {
	label string
	maxH  float64
}{{"< 1 d", 24}, {"1-3 d", 72}, {"3-7 d", 168}, {"7-30 d", 720}, {"30-90 d", 2160}, {"> 90 d", math.Inf(1)}}

// Distribution draws, per severity, how many patches took how long: a grid of cells
// whose darkness and number give the count, with the SLA bucket marked.
func Distribution(title string, ds []Durations) template.HTML {
	var b strings.Builder
	rowH, labelW := 30.0, 80.0
	h := int(rowH*float64(len(ds))) + padT + padB
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" class="chart" font-family="sans-serif" font-size="11"><title>%s</title>`,
		chartW, h, html.EscapeString(title))
	cellW := (float64(chartW-padR) - labelW) / float64(len(ttpBuckets))
	maxC := 1
	counts := make([][]int, len(ds))
	for i, d := range ds {
		counts[i] = make([]int, len(ttpBuckets))
		for _, v := range d.Hours {
			for j, bk := range ttpBuckets {
				if v < bk.maxH {
					counts[i][j]++
					break
				}
			}
		}
		for _, c := range counts[i] {
			maxC = max(maxC, c)
		}
	}
	for j, bk := range ttpBuckets {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`, labelW+cellW*(float64(j)+0.5), padT-4, html.EscapeString(bk.label))
	}
	for i, d := range ds {
		y := float64(padT) + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#222">%s</text>`, labelW-6, y+rowH/2+4, html.EscapeString(d.Severity))
		for j, c := range counts[i] {
			alpha := 0.06 + 0.9*float64(c)/float64(maxC)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2563eb" fill-opacity="%.2f" stroke="#fff"><title>%s, %s: %d</title></rect>`,
				labelW+cellW*float64(j), y, cellW, rowH, alpha, html.EscapeString(d.Severity), html.EscapeString(ttpBuckets[j].label), c)
			if c > 0 {
				fill := "#111"
				if alpha > 0.5 {
					fill = "#fff"
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%d</text>`, labelW+cellW*(float64(j)+0.5), y+rowH/2+4, fill, c)
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#555">median and p90 per severity are in the table below; darker = more patches</text>`, labelW, h-8)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
