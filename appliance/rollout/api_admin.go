package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/httpapi"
)

// ActorFunc names the person (or API token) behind an admin request, or refuses it.
// The auth layer supplies the real one; LoopbackActor is the development stand-in.
type ActorFunc func(r *http.Request) (string, error)

// ActorHeader is the header LoopbackActor reads the actor's name from.
const ActorHeader = "X-Patchgate-Actor"

// LoopbackActor is the ActorFunc to use until the auth layer is wired: it accepts only
// requests from a loopback address, and takes the actor's name from the
// X-Patchgate-Actor header. Nobody on the network can change anything through it; on
// the appliance itself, anyone with a shell can (as they could edit the database).
func LoopbackActor(r *http.Request) (string, error) {
	if a := remoteAddr(r); !a.IsValid() || !a.IsLoopback() {
		return "", errors.New("state-changing requests need an authenticated actor; until authentication is set up they are accepted only from the appliance itself (loopback)")
	}
	name := r.Header.Get(ActorHeader)
	if !audit.ValidActor(name) {
		return "", fmt.Errorf("name yourself in the %s header (letters, digits, . _ @ -; at most 64)", ActorHeader)
	}
	return name, nil
}

// API is the admin JSON API of the rollout engine: rings, windows, releases, rollouts
// and their transitions, deployments, enrolment tokens and agents. Every state-changing
// route asks Actor who is acting and refuses the request if it cannot say; separation
// of duties is enforced by the engine whatever Actor returns.
type API struct {
	e     *Engine
	actor ActorFunc
	log   *slog.Logger
	f     Forms // nil: JSON bodies only
}

// NewAPI returns the admin API of e. actor must not be nil.
func NewAPI(e *Engine, actor ActorFunc) *API {
	return &API{e: e, actor: actor, log: e.log}
}

// WithForms lets the state-changing routes also take an HTML form (the admin pages'
// forms post to these same routes): its fields are decoded into the same value a JSON
// body gives (httpapi.DecodeForm), and the answer is f's (a redirect back to the form's
// "return" or an error page). Only for an API behind the auth guard, whose
// cross-origin check stands in for the JSON-only rule that keeps other sites' forms out.
func (a *API) WithForms(f Forms) *API {
	a.f = f
	return a
}

// Register mounts the API on mux (the admin listener's), under /api/v1/. HTML forms
// cannot send PUT or DELETE: each such route also has a POST twin (".../delete" for a
// DELETE) with the same handler and, in auth's table, the same permission.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rings", a.get(func(r *http.Request) (any, error) { return a.e.Rings(r.Context()) }))
	mux.HandleFunc("PUT /api/v1/rings/{name}", a.change(a.putRing))
	mux.HandleFunc("POST /api/v1/rings/{name}", a.change(a.putRing))
	mux.HandleFunc("POST /api/v1/rings", a.change(a.putRing)) // a new ring, its name in the body
	deleteRing := a.change(func(r *http.Request, actor string) (any, error) {
		if err := noFields(r); err != nil {
			return nil, err
		}
		return nil, a.e.DeleteRing(r.Context(), actor, r.PathValue("name"))
	})
	mux.HandleFunc("DELETE /api/v1/rings/{name}", deleteRing)
	mux.HandleFunc("POST /api/v1/rings/{name}/delete", deleteRing)

	mux.HandleFunc("GET /api/v1/windows", a.get(func(r *http.Request) (any, error) { return a.e.Windows(r.Context()) }))
	mux.HandleFunc("GET /api/v1/windows/openings", a.get(func(r *http.Request) (any, error) { return a.e.Openings(r.Context()) }))
	mux.HandleFunc("POST /api/v1/windows", a.change(withBody(a.e.AddWindow)))
	deleteWindow := a.change(func(r *http.Request, actor string) (any, error) {
		if err := noFields(r); err != nil {
			return nil, err
		}
		return byID(func(ctx context.Context, id int64) (any, error) { return nil, a.e.DeleteWindow(ctx, actor, id) })(r)
	})
	mux.HandleFunc("DELETE /api/v1/windows/{id}", deleteWindow)
	mux.HandleFunc("POST /api/v1/windows/{id}/delete", deleteWindow)

	mux.HandleFunc("GET /api/v1/releases", a.get(func(r *http.Request) (any, error) { return a.e.Releases(r.Context()) }))
	mux.HandleFunc("GET /api/v1/releases/{id}", a.get(byID(a.e.Release)))
	mux.HandleFunc("POST /api/v1/releases", a.change(withBody(a.e.CreateRelease)))
	mux.HandleFunc("POST /api/v1/releases/kev", a.change(func(r *http.Request, actor string) (any, error) {
		if err := jsonBody(r); err != nil {
			return nil, err
		}
		return a.e.ImportKEV(r.Context(), actor, r.Body) // ParseKEV bounds what it reads
	}))

	mux.HandleFunc("GET /api/v1/rollouts", a.get(func(r *http.Request) (any, error) {
		var states []State
		for _, s := range r.URL.Query()["state"] {
			states = append(states, State(s))
		}
		return a.e.Rollouts(r.Context(), states...)
	}))
	mux.HandleFunc("GET /api/v1/rollouts/{id}", a.get(byID(a.e.Rollout)))
	mux.HandleFunc("GET /api/v1/rollouts/{id}/events", a.get(byID(func(ctx context.Context, id int64) ([]Event, error) {
		if _, err := a.e.Rollout(ctx, id); err != nil {
			return nil, err // ErrNotFound: 404, not an empty history
		}
		evs, err := a.e.Events(ctx, id, 1000)
		if evs == nil {
			evs = []Event{}
		}
		return evs, err
	})))
	mux.HandleFunc("POST /api/v1/rollouts", a.change(withBody(a.e.CreateRollout)))
	mux.HandleFunc("PUT /api/v1/rollouts/{id}", a.change(func(r *http.Request, actor string) (any, error) {
		return byID(func(ctx context.Context, id int64) (*Rollout, error) {
			var spec RolloutSpec
			if err := decodeAdmin(r, &spec); err != nil {
				return nil, err
			}
			return a.e.UpdateRollout(ctx, actor, id, spec)
		})(r)
	}))
	// One pattern; the auth layer gives each action its permission (auth.AdminActions).
	mux.HandleFunc("POST /api/v1/rollouts/{id}/{action}", a.change(func(r *http.Request, actor string) (any, error) {
		return a.doAction(r, actor, r.PathValue("action"))
	}))

	mux.HandleFunc("GET /api/v1/deployments", a.get(a.deployments))
	mux.HandleFunc("GET /api/v1/deployments/{id}", a.get(byID(a.e.Deployment)))
	mux.HandleFunc("GET /api/v1/overdue", a.get(func(r *http.Request) (any, error) {
		counts, items, err := a.e.OverdueAssets(r.Context(), 1000)
		return map[string]any{"by_severity": counts, "assets": items}, err
	}))

	mux.HandleFunc("GET /api/v1/enrolment-tokens", a.get(func(r *http.Request) (any, error) { return a.e.Tokens(r.Context()) }))
	mux.HandleFunc("POST /api/v1/enrolment-tokens", a.change(a.createToken))
	mux.HandleFunc("DELETE /api/v1/enrolment-tokens/{id}", a.change(func(r *http.Request, actor string) (any, error) {
		return nil, a.e.RevokeToken(r.Context(), actor, r.PathValue("id"))
	}))
	mux.HandleFunc("GET /api/v1/agents", a.get(func(r *http.Request) (any, error) { return a.e.Agents(r.Context()) }))
	mux.HandleFunc("DELETE /api/v1/agents/{id}", a.change(func(r *http.Request, actor string) (any, error) {
		return nil, a.e.RevokeAgent(r.Context(), actor, r.PathValue("id"))
	}))
}

// byID adapts fn to a route with an {id} in its path.
func byID[T any](fn func(ctx context.Context, id int64) (T, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r)
		if err != nil {
			return nil, err
		}
		return fn(r.Context(), id)
	}
}

// withBody adapts fn to a state-changing route whose JSON body is fn's input.
func withBody[In, Out any](fn func(ctx context.Context, actor string, in In) (Out, error)) func(*http.Request, string) (any, error) {
	return func(r *http.Request, actor string) (any, error) {
		var in In
		if err := decodeAdmin(r, &in); err != nil {
			return nil, err
		}
		return fn(r.Context(), actor, in)
	}
}

func (a *API) get(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			fail(w, a.log, err, 0)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, v)
	}
}

// change runs a state-changing route for the request's actor. A request whose actor
// cannot be named is refused before anything is read. A form (WithForms) is answered
// by the forms: a redirect back to its "return" (else /rollouts) or an error page.
func (a *API) change(fn func(r *http.Request, actor string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.f != nil && httpapi.IsForm(r) {
			a.changeForm(w, r.WithContext(context.WithValue(r.Context(), formsKey{}, true)), fn)
			return
		}
		actor, err := a.actor(r)
		if err != nil {
			httpapi.WriteJSON(w, http.StatusForbidden, agentapi.Error{Error: err.Error()})
			return
		}
		v, err := fn(r, actor)
		if errors.Is(err, httpapi.ErrTooLarge) {
			httpapi.WriteJSON(w, http.StatusRequestEntityTooLarge, agentapi.Error{Error: err.Error()})
			return
		}
		if err != nil {
			fail(w, a.log, err, 0)
			return
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, v)
	}
}

// noFields refuses a body with any field (a form may carry only "return"): the routes
// that take none.
func noFields(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	var none struct{}
	return decodeAdmin(r, &none)
}

// formsKey marks a request whose form body decodeAdmin may read (WithForms).
type formsKey struct{}

func (a *API) changeForm(w http.ResponseWriter, r *http.Request, fn func(r *http.Request, actor string) (any, error)) {
	actor, err := a.actor(r)
	var v any
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	} else {
		v, err = fn(r, actor)
	}
	if errors.Is(err, httpapi.ErrTooLarge) {
		err = fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		a.f.Fail(w, r, err)
		return
	}
	a.f.Done(w, r, map[string]string{"return": httpapi.FormReturn(r)}, "/rollouts", http.StatusOK, v)
}

// jsonBody insists on a JSON body: a cross-site HTML form cannot send one without the
// browser asking first (CORS preflight), which nothing here answers.
func jsonBody(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type must be application/json", ErrInvalid)
	}
	return nil
}

// decodeAdmin reads an admin request's JSON body strictly: a key v has no field for is
// refused by name (the agent API's decode is lenient instead; see README.md).
func decodeAdmin(r *http.Request, v any) error {
	if ok, _ := r.Context().Value(formsKey{}).(bool); ok && httpapi.IsForm(r) {
		return bodyError(httpapi.DecodeForm(nil, r, v, maxBody))
	}
	if err := jsonBody(r); err != nil {
		return err
	}
	return bodyError(httpapi.DecodeJSON(nil, r, v, maxBody))
}

func (a *API) putRing(r *http.Request, actor string) (any, error) {
	var ring Ring
	if err := decodeAdmin(r, &ring); err != nil {
		return nil, err
	}
	if ring.Name == "" {
		ring.Name = r.PathValue("name")
	}
	if path := r.PathValue("name"); path != "" && ring.Name != path {
		return nil, fmt.Errorf("%w: ring name %q in the body differs from %q in the path", ErrInvalid, ring.Name, r.PathValue("name"))
	}
	if err := a.e.PutRing(r.Context(), actor, ring); err != nil {
		return nil, err
	}
	return ring, nil
}

// actionRequest is the body of POST /api/v1/rollouts/{id}/{action}; which fields
// matter depends on the action.
type actionRequest struct {
	Remark string    `json:"remark"`
	Reason string    `json:"reason"`
	Start  time.Time `json:"start"`
}

// doAction runs POST /api/v1/rollouts/{id}/ACTION: submit, approve, reject, schedule,
// pause, resume, halt, cancel or advance (a forced stage).
func (a *API) doAction(r *http.Request, actor, action string) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	var req actionRequest
	if r.ContentLength != 0 {
		if err := decodeAdmin(r, &req); err != nil {
			return nil, err
		}
	}
	ctx, e := r.Context(), a.e
	switch action {
	case "submit":
		return e.Submit(ctx, id, actor)
	case "approve":
		return e.Approve(ctx, id, actor, req.Remark)
	case "reject":
		return e.Reject(ctx, id, actor, req.Remark)
	case "schedule":
		return e.Schedule(ctx, id, actor, req.Start)
	case "pause":
		return e.Pause(ctx, id, actor, req.Reason)
	case "resume":
		return e.Resume(ctx, id, actor, req.Remark)
	case "halt":
		return e.Halt(ctx, id, actor, req.Reason)
	case "cancel":
		return e.Cancel(ctx, id, actor, req.Reason)
	case "advance":
		return e.ForceAdvance(ctx, id, actor, req.Reason)
	}
	return nil, fmt.Errorf("%w: unknown action %q", ErrNotFound, action)
}

func (a *API) deployments(r *http.Request) (any, error) {
	q := r.URL.Query()
	f := DeploymentFilter{AssetID: q.Get("asset"), Ring: q.Get("ring")}
	if s := q.Get("rollout"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: rollout: %q is not an id", ErrInvalid, s)
		}
		f.RolloutID = id
	}
	for _, s := range q["state"] {
		f.States = append(f.States, DeploymentState(s))
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("%w: limit: want 1-10000, got %q", ErrInvalid, s)
		}
		f.Limit = n
	}
	ds, err := a.e.Deployments(r.Context(), f)
	if ds == nil {
		ds = []*Deployment{}
	}
	return ds, err
}

type tokenRequest struct {
	Name    string   `json:"name"`
	Ring    string   `json:"ring"`
	Tags    []string `json:"tags"`
	TTL     Duration `json:"ttl"`
	MaxUses int      `json:"max_uses"`
}

type tokenResponse struct {
	// Token is the enrolment token itself, shown only in this response.
	Token string         `json:"token"`
	Info  EnrolmentToken `json:"info"`
}

func (a *API) createToken(r *http.Request, actor string) (any, error) {
	var req tokenRequest
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	if req.TTL == 0 {
		req.TTL = Duration(24 * time.Hour)
	}
	if req.MaxUses == 0 {
		req.MaxUses = 1
	}
	tok, info, err := a.e.CreateToken(r.Context(), actor, req.Name, req.Ring, req.Tags, req.TTL.D(), req.MaxUses)
	if err != nil {
		return nil, err
	}
	return tokenResponse{Token: tok, Info: info}, nil
}
