package rollout

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// Forms is how the approval and exception pages talk to browsers and API clients, the
// same way as the other pages of the admin listener (auth provides it): a request's
// fields from a form or a JSON object; success as a redirect back (for a form, to its
// "return" field or back) or as JSON with code; an error as a page or as JSON with its
// status (the wiring maps this package's errors to statuses); a page template drawn
// with data and the signed-in user.
type Forms interface {
	// Input reads a form or JSON body; a JSON key not among fields is refused by name.
	Input(r *http.Request, fields ...string) (map[string]string, error)
	Done(w http.ResponseWriter, r *http.Request, in map[string]string, back string, code int, v any)
	Fail(w http.ResponseWriter, r *http.Request, err error)
	Render(w http.ResponseWriter, r *http.Request, page string, data any)
}

// Pages serves the approvals page and API (the approval guard in front of the engine)
// and the patch exceptions page and API on the admin listener. Who may use which route
// is auth's decision (auth.AdminRoutes, checked by its guard before a handler runs);
// actor names who is acting.
type Pages struct {
	e     *Engine
	actor ActorFunc
	f     Forms
}

// NewPages returns the pages of e; actor and f must not be nil.
func NewPages(e *Engine, actor ActorFunc, f Forms) *Pages {
	return &Pages{e: e, actor: actor, f: f}
}

// Register mounts the routes on mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /approvals", p.page("approvals.html", func(r *http.Request) (any, error) { return p.e.AwaitingApproval(r.Context()) }))
	mux.HandleFunc("GET /api/v1/approvals", p.list(func(r *http.Request) (any, error) { return p.e.AwaitingApproval(r.Context()) }))
	mux.HandleFunc("POST /api/v1/approvals/{id}/approve", p.decideRollout(true))
	mux.HandleFunc("POST /api/v1/approvals/{id}/reject", p.decideRollout(false))
	p.registerReviews(mux) // review_pages.go: self-approvals and their countersignatures

	mux.HandleFunc("GET /exceptions", p.page("exceptions.html", func(r *http.Request) (any, error) { return p.e.Exceptions(r.Context(), false) }))
	mux.HandleFunc("GET /api/v1/exceptions", p.list(func(r *http.Request) (any, error) {
		exs, err := p.e.Exceptions(r.Context(), r.URL.Query().Get("open") != "")
		if exs == nil {
			exs = []Exception{}
		}
		return exs, err
	}))
	mux.HandleFunc("POST /api/v1/exceptions", p.requestException)
	mux.HandleFunc("POST /api/v1/exceptions/{id}/approve", p.exceptionAction(func(ctx context.Context, actor string, id int64, remark string) error {
		return p.e.DecideException(ctx, actor, id, true, remark)
	}))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/reject", p.exceptionAction(func(ctx context.Context, actor string, id int64, remark string) error {
		return p.e.DecideException(ctx, actor, id, false, remark)
	}))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/revoke", p.exceptionAction(p.e.RevokeException))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/review", p.exceptionAction(p.e.ReviewException))
	p.registerManage(mux) // pages_manage.go
}

func (p *Pages) page(name string, load func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := load(r)
		if err != nil {
			p.f.Fail(w, r, err)
			return
		}
		p.f.Render(w, r, name, v)
	}
}

func (p *Pages) list(load func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := load(r)
		if err != nil {
			p.f.Fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, v)
	}
}

// action runs a state-changing route: the request's fields and actor, then do, then
// the answer Done gives (back to the page back for a form). A JSON body may hold only
// the named fields.
func (p *Pages) action(back string, code int, fields []string, do func(r *http.Request, in map[string]string, actor string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := p.f.Input(r, fields...)
		var v any
		if err == nil {
			var actor string
			if actor, err = p.actor(r); err != nil {
				err = fmt.Errorf("%w: %v", ErrUnauthenticated, err)
			} else {
				v, err = do(r, in, actor)
			}
		}
		if err != nil {
			p.f.Fail(w, r, err)
			return
		}
		p.f.Done(w, r, in, back, code, v)
	}
}

func (p *Pages) decideRollout(approve bool) http.HandlerFunc {
	word := "rejected"
	if approve {
		word = "approval recorded"
	}
	return p.action("/approvals", http.StatusOK, []string{"remark"}, func(r *http.Request, in map[string]string, actor string) (any, error) {
		id, err := formID(r)
		if err == nil {
			err = p.e.ApproveRollout(r.Context(), actor, id, approve, in["remark"])
		}
		return map[string]string{"status": word, "rollout": fmt.Sprint(id)}, err
	})
}

func (p *Pages) requestException(w http.ResponseWriter, r *http.Request) {
	p.action("/exceptions", http.StatusCreated, []string{"asset", "ring", "release", "cve", "reason", "compensating_controls", "expires_at", "review_at"}, func(r *http.Request, in map[string]string, actor string) (any, error) {
		x := Exception{Asset: in["asset"], Ring: in["ring"], Release: in["release"], CVE: in["cve"], Reason: in["reason"], Controls: in["compensating_controls"]}
		for _, f := range []struct {
			key string
			dst *time.Time
		}{{"expires_at", &x.ExpiresAt}, {"review_at", &x.ReviewAt}} {
			if s := in[f.key]; s != "" {
				t, err := parseDate(s)
				if err != nil {
					return nil, refusef(ErrInvalid, "%s: %v", f.key, err)
				}
				*f.dst = t
			}
		}
		return p.e.RequestException(r.Context(), actor, x)
	})(w, r)
}

func (p *Pages) exceptionAction(fn func(ctx context.Context, actor string, id int64, remark string) error) http.HandlerFunc {
	return p.action("/exceptions", http.StatusOK, []string{"remark"}, func(r *http.Request, in map[string]string, actor string) (any, error) {
		id, err := formID(r)
		if err == nil {
			err = fn(r.Context(), actor, id, in["remark"])
		}
		return map[string]string{"status": "ok"}, err
	})
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date like 2026-04-30 or an RFC 3339 time, got %q", s)
}

// formID is the {id} of a page's route, with the message the pages have always given.
func formID(r *http.Request) (int64, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, refusef(ErrInvalid, "bad id %q", r.PathValue("id"))
	}
	return id, nil
}
