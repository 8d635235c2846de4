// Package curves measures how Patchgate's costs grow with a site's work (issue 22) and
// writes each curve as CSV and as an SVG line plot. The measurements are benchmarks
// (curves_test.go), run by `make bench` at small sizes; PG_CURVES=full runs the sizes
// the issue names, and PG_CURVES_OUT names the directory (default test/bench/out/curves).
package curves

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Curve is one measured curve: y values of one or more series against x.
type Curve struct {
	Name   string // file name without extension
	Title  string
	XLabel string
	YLabel string
	LogX   bool
	LogY   bool
	X      []float64
	Series []Series
	// Notes go under the plot (the run's load, the command).
	Notes []string
}

// Series is one line of a Curve.
type Series struct {
	Name string
	Y    []float64
}

// WriteCSV writes the curve as CSV: x, then one column per series.
func (c *Curve) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{c.XLabel}
	for _, s := range c.Series {
		head = append(head, s.Name)
	}
	cw.Write(head)
	for i, x := range c.X {
		row := []string{strconv.FormatFloat(x, 'f', -1, 64)}
		for _, s := range c.Series {
			v := ""
			if i < len(s.Y) && !math.IsNaN(s.Y[i]) {
				v = strconv.FormatFloat(s.Y[i], 'g', 6, 64)
			}
			row = append(row, v)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// Save writes dir/NAME.csv and dir/NAME.svg.
func (c *Curve) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save curve %s: %w", c.Name, err)
	}
	for _, f := range []struct {
		ext   string
		write func(io.Writer) error
	}{{".csv", c.WriteCSV}, {".svg", c.WriteSVG}} {
		out, err := os.Create(filepath.Join(dir, c.Name+f.ext))
		if err != nil {
			return fmt.Errorf("save curve %s: %w", c.Name, err)
		}
		err = f.write(out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("save curve %s: %w", c.Name, err)
		}
	}
	return nil
}

const (
	svgW, svgH               = 800, 400
	padL, padR, padT, padB   = 70, 170, 40, 60
	plotW, plotH             = svgW - padL - padR, svgH - padT - padB
	ticks                    = 5
	notesLineHeight, notesY0 = 14, svgH + 4
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

type svgTick struct {
	Pos   float64
	Label string
}

type svgLine struct {
	Name, Color, Points string
	DotXY               [][2]float64
	LegendY             float64
}

type svgData struct {
	W, H, PadL, PadT, PlotW, PlotH float64
	Title, XLabel, YLabel          string
	XTicks, YTicks                 []svgTick
	Lines                          []svgLine
	Notes                          []string
	NotesY                         float64
	TotalH                         float64
}

var svgTemplate = template.Must(template.New("svg").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.TotalH}}" viewBox="0 0 {{.W}} {{.TotalH}}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{{.PadL}}" y="20" font-size="14" font-weight="bold">{{.Title}}</text>
<g transform="translate({{.PadL}},{{.PadT}})">
<rect width="{{.PlotW}}" height="{{.PlotH}}" fill="none" stroke="#888"/>
{{range .XTicks}}<line x1="{{.Pos}}" x2="{{.Pos}}" y1="0" y2="{{$.PlotH}}" stroke="#eee"/><text x="{{.Pos}}" y="{{$.PlotH}}" dy="15" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .YTicks}}<line x1="0" x2="{{$.PlotW}}" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#eee"/><text x="-5" y="{{.Pos}}" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"/>
{{$c := .Color}}{{range .DotXY}}<circle cx="{{index . 0}}" cy="{{index . 1}}" r="3" fill="{{$c}}"/>
{{end}}<text x="{{$.PlotW}}" dx="12" y="{{.LegendY}}" fill="{{.Color}}">■ {{.Name}}</text>
{{end}}<text x="{{.PlotW}}" y="{{.PlotH}}" dy="35" text-anchor="end">{{.XLabel}}</text>
<text transform="translate(-55,{{.PlotH}}) rotate(-90)" text-anchor="start">{{.YLabel}}</text>
</g>
{{range $i, $n := .Notes}}<text x="10" y="{{$.NotesY}}" dy="{{$i}}em">{{$n}}</text>
{{end}}</svg>
`))

// WriteSVG draws the curve: a line per series, log axes where asked.
func (c *Curve) WriteSVG(w io.Writer) error {
	tx := scale(c.X, c.LogX, plotW, false)
	var ys []float64
	for _, s := range c.Series {
		for _, y := range s.Y {
			if !math.IsNaN(y) {
				ys = append(ys, y)
			}
		}
	}
	if !c.LogY {
		ys = append(ys, 0) // linear y axes start at zero: bends are not exaggerated
	}
	ty := scale(ys, c.LogY, plotH, true)
	d := svgData{W: svgW, H: svgH, PadL: padL, PadT: padT, PlotW: plotW, PlotH: plotH,
		Title: c.Title, XLabel: c.XLabel, YLabel: c.YLabel, XTicks: tx.ticks(), YTicks: ty.ticks(),
		Notes: c.Notes, NotesY: notesY0}
	d.TotalH = svgH + float64(len(c.Notes))*notesLineHeight + 8
	for i, s := range c.Series {
		l := svgLine{Name: s.Name, Color: palette[i%len(palette)], LegendY: float64(12 + 16*i)}
		for j, y := range s.Y {
			if j >= len(c.X) || math.IsNaN(y) {
				continue
			}
			px, py := tx.at(c.X[j]), ty.at(y)
			l.Points += fmt.Sprintf("%.1f,%.1f ", px, py)
			l.DotXY = append(l.DotXY, [2]float64{math.Round(px*10) / 10, math.Round(py*10) / 10})
		}
		d.Lines = append(d.Lines, l)
	}
	return svgTemplate.Execute(w, d)
}

// axis maps values onto [0, size] pixels.
type axis struct {
	lo, hi  float64 // in axis units (log10 when log)
	log     bool
	size    float64
	flipped bool // y: larger values higher up
}

func scale(vs []float64, log bool, size float64, flipped bool) axis {
	a := axis{lo: math.Inf(1), hi: math.Inf(-1), log: log, size: size, flipped: flipped}
	for _, v := range vs {
		if log {
			if v <= 0 {
				continue
			}
			v = math.Log10(v)
		}
		a.lo, a.hi = min(a.lo, v), max(a.hi, v)
	}
	if math.IsInf(a.lo, 0) {
		a.lo, a.hi = 0, 1
	}
	if log {
		a.lo, a.hi = math.Floor(a.lo), math.Ceil(a.hi)
	} else {
		a.hi = niceCeil(a.hi)
	}
	if a.hi <= a.lo {
		a.hi = a.lo + 1
	}
	return a
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func (a axis) at(v float64) float64 {
	if a.log {
		if v <= 0 {
			v = math.Pow(10, a.lo)
		}
		v = math.Log10(v)
	}
	f := (v - a.lo) / (a.hi - a.lo) * a.size
	if a.flipped {
		return a.size - f
	}
	return f
}

func (a axis) ticks() []svgTick {
	var ts []svgTick
	if a.log {
		for e := a.lo; e <= a.hi; e++ {
			v := math.Pow(10, e)
			ts = append(ts, svgTick{Pos: a.at(v), Label: short(v)})
		}
		return ts
	}
	for i := range ticks + 1 {
		v := a.lo + (a.hi-a.lo)*float64(i)/ticks
		ts = append(ts, svgTick{Pos: a.at(v), Label: short(v)})
	}
	return ts
}

// short formats a tick value: 1k, 2.5M, 0.1.
func short(v float64) string {
	switch av := math.Abs(v); {
	case av >= 1e9:
		return strconv.FormatFloat(v/1e9, 'g', 3, 64) + "G"
	case av >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case av >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
