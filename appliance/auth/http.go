package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// WriteError answers a refused request with code and msg: JSON {"error": msg} for API
// clients, a short page a browser can show for a page or for a form it sent (to a page
// or an /api/ route alike).
func WriteError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	// A browser's form (to a page or an /api/ route alike) gets a page it can show.
	browserForm := isForm(r) && r.Method != http.MethodGet && acceptsHTML(r)
	if !browserForm && (wantsJSON(r) || isForm(r) && r.Method != http.MethodGet) {
		httpapi.WriteError(w, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%d · Patchgate</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>%d %s</h1><p class="bad" id="error">%s</p><p><a href="/">Status</a> · <a href="/login">Log in</a></p></main></body></html>`,
		code, code, http.StatusText(code), htmlEscape(msg))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// writeJSON answers v as JSON (httpapi.WriteJSON).
var writeJSON = httpapi.WriteJSON

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

func acceptsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// fail answers err with its status code (400/403/404/409 for the API's own errors,
// 500 otherwise, which is logged).
func (a *Authority) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		WriteError(w, r, he.code, he.msg)
	case errors.Is(err, ErrNotFound):
		WriteError(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrLocked):
		WriteError(w, r, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, errBadLogin), errors.Is(err, errBadToken):
		WriteError(w, r, http.StatusUnauthorized, err.Error())
	default:
		a.log.Error("auth: request failed", "path", r.URL.Path, "err", err)
		WriteError(w, r, http.StatusInternalServerError, "internal error; see the log")
	}
}

// input is a request's fields, from a JSON object or a form.
type input map[string]string

const maxBody = 64 << 10

func readInput(r *http.Request) (input, error) {
	in := input{}
	if isForm(r) {
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return nil, badRequest("bad form: %v", err)
		}
		for k, v := range r.PostForm {
			// Repeated keys (a group of checkboxes: roles) read as a comma list, as a
			// JSON array does.
			in[k] = strings.TrimSpace(strings.Join(v, ","))
		}
		return in, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	if len(b) > maxBody {
		return nil, badRequest("body over %d bytes", maxBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return in, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, badRequest("body must be a JSON object: %v", err)
	}
	for k, v := range m {
		switch x := v.(type) {
		case string:
			in[k] = strings.TrimSpace(x)
		case float64, bool:
			in[k] = fmt.Sprint(x)
		case []any:
			var parts []string
			for _, p := range x {
				parts = append(parts, fmt.Sprint(p))
			}
			in[k] = strings.Join(parts, ",")
		case nil:
		default:
			return nil, badRequest("field %q must be a string", k)
		}
	}
	return in, nil
}

// readFields returns the reader of an action that takes the named fields: like
// readInput, but a JSON body with any other key is refused, naming it, as the admin
// API's strict decoder (httpapi.DecodeJSON) does. A browser form may also carry
// "return" (the page to go back to).
func readFields(names ...string) func(*http.Request) (input, error) {
	return func(r *http.Request) (input, error) {
		in, err := readInput(r)
		if err != nil {
			return nil, err
		}
		return in, in.only(r, names)
	}
}

// only refuses a JSON body's keys that are not in names.
func (in input) only(r *http.Request, names []string) error {
	if isForm(r) {
		return nil
	}
	var unknown []string
	for k := range in {
		if !slices.Contains(names, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	takes := "no fields"
	if len(names) > 0 {
		takes = strings.Join(names, ", ")
	}
	return badRequest("body: unknown field %s (this takes %s)", strings.Join(unknown, ", "), takes)
}

// done answers a successful change: a redirect back to the page for a browser form,
// JSON otherwise.
func done(w http.ResponseWriter, r *http.Request, in input, back string, code int, v any) {
	if isForm(r) {
		if ret := in["return"]; strings.HasPrefix(ret, "/") && !strings.HasPrefix(ret, "//") {
			back = ret
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	writeJSON(w, code, v)
}

// localPath keeps a ?next= redirect on this site.
func localPath(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || u.Host != "" || strings.Contains(s, "\\") {
		return "/"
	}
	return s
}
