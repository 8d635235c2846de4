package auth

import "net/http"

// Forms is the request handling of the admin pages, for the subsystems that serve their
// own pages and form actions behind the guard (appliance/rollout's approvals and
// exceptions): the same input reading, answers, error pages and templates as auth's own.
type Forms struct{ a *Authority }

// Forms returns the admin pages' request handling.
func (a *Authority) Forms() Forms { return Forms{a} }

// Input reads a request's fields from a form or a JSON object (at most 64 KiB).
func (f Forms) Input(r *http.Request, fields ...string) (map[string]string, error) {
	return readFields(fields...)(r)
}

// Done answers a successful change: a redirect to back (or to the form's "return") for
// a browser form, v as JSON with code otherwise.
func (f Forms) Done(w http.ResponseWriter, r *http.Request, in map[string]string, back string, code int, v any) {
	done(w, r, in, back, code, v)
}

// Fail answers err: its status and message for a refusal (Refuse), 404 for ErrNotFound,
// else 500 (logged); as a short page for browsers, JSON otherwise.
func (f Forms) Fail(w http.ResponseWriter, r *http.Request, err error) { f.a.fail(w, r, err) }

// Render draws the page template with data (as Page.Data) and the signed-in user.
func (f Forms) Render(w http.ResponseWriter, r *http.Request, page string, data any) {
	f.a.render(w, r, http.StatusOK, page, Page{Data: data})
}
