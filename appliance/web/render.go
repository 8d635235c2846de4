package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

//go:embed templates static
var assets embed.FS

// Pages renders the status page and serves its static assets. It is safe for concurrent
// use.
type Pages struct {
	src StatusSource
	log *slog.Logger
	t   *template.Template
}

// NewPages parses the embedded templates; an error here is a bug caught by tests.
func NewPages(src StatusSource, log *slog.Logger) (*Pages, error) {
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html", "templates/panels/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	return &Pages{src: src, log: log, t: t}, nil
}

// Register mounts the pages on mux: / (status, HTML or JSON), /api/v1/status (JSON) and
// /static/.
func (p *Pages) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", p.status)
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, p.src.Status(r.Context()))
	})
}

func (p *Pages) status(w http.ResponseWriter, r *http.Request) {
	st := p.src.Status(r.Context())
	if WantsJSON(r) {
		httpapi.WriteJSON(w, http.StatusOK, st)
		return
	}
	p.Render(w, "status.html", st)
}

// Render executes the named page template with data into a buffer and writes it, so a
// template error is a clean 500 instead of half a page. Panels in a Status are rendered
// through their own templates first.
func (p *Pages) Render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, p.view(data)); err != nil {
		p.log.Error("web: render", "template", name, "err", err)
		http.Error(w, "internal error rendering the page; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// statusView is Status with its panels rendered.
type statusView struct {
	Status
	Rendered []renderedPanel
}

type renderedPanel struct {
	ID, Title string
	HTML      template.HTML
}

func (p *Pages) view(data any) any {
	st, ok := data.(Status)
	if !ok {
		return data
	}
	v := statusView{Status: st}
	for _, pn := range st.Panels {
		var buf bytes.Buffer
		name := "panel-" + pn.ID
		if p.t.Lookup(name) == nil {
			name = "panel-generic"
		}
		if err := p.t.ExecuteTemplate(&buf, name, pn.Data); err != nil {
			p.log.Error("web: render panel", "panel", pn.ID, "err", err)
			buf.Reset()
			buf.WriteString(`<p class="bad">This panel could not be drawn; see the log.</p>`)
		}
		v.Rendered = append(v.Rendered, renderedPanel{pn.ID, pn.Title, template.HTML(buf.String())})
	}
	return v
}

// WantsJSON reports whether the client prefers JSON to HTML (Accept header).
func WantsJSON(r *http.Request) bool {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		if (mt == "application/json" || mt == "text/html") && q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best == "application/json"
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

var funcs = template.FuncMap{
	"rel": Rel,
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"bytes":      humanBytes,
	"hasPrefix":  strings.HasPrefix,
	"trimPrefix": strings.TrimPrefix,
	"join":       strings.Join,
	"json": func(v any) (string, error) {
		b, err := json.MarshalIndent(v, "", "  ")
		return string(b), err
	},
	"pct": func(part, whole float64) string {
		if whole <= 0 {
			return "0"
		}
		return strconv.FormatFloat(100*part/whole, 'f', 0, 64)
	},
}

// relMagnitudes are the steps of Rel, in github.com/dustin/go-humanize's table form: the
// largest unit that gives at least 1 (2 for days, months and years, so that no "1 days").
var relMagnitudes = []humanize.RelTimeMagnitude{
	{D: time.Second, Format: "now", DivBy: time.Second},
	{D: time.Minute, Format: "%d s %s", DivBy: time.Second},
	{D: time.Hour, Format: "%d min %s", DivBy: time.Minute},
	{D: 2 * humanize.Day, Format: "%d h %s", DivBy: time.Hour},
	{D: 60 * humanize.Day, Format: "%d days %s", DivBy: humanize.Day},
	{D: 2 * humanize.Year, Format: "%d months %s", DivBy: humanize.Month},
	{D: humanize.LongTime, Format: "%d years %s", DivBy: humanize.Year},
	{D: math.MaxInt64, Format: "a long while %s", DivBy: 1},
}

// Rel says when t is, seen from now, as the web pages show every time and deadline:
// "3 h ago", "in 7 days", "now"; "never" for the zero time. It is the template func
// rel ({{rel $.Now .ExpiresAt}}).
func Rel(now, t time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case t.After(now):
		s := humanize.CustomRelTime(now, t, "", "", relMagnitudes)
		if s == "now" {
			return s
		}
		return "in " + s
	default:
		return humanize.CustomRelTime(t, now, "ago", "", relMagnitudes)
	}
}

func humanBytes(v any) string {
	var n float64
	switch x := v.(type) {
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case uint64:
		n = float64(x)
	case float64:
		n = x
	default:
		return fmt.Sprint(v)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
