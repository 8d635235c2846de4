package auth

import (
	"context"
	"errors"
	"net/http"
	"sync"
)

// ApplianceUpdates is the appliance's own update (appliance/selfupdate) as the status
// page's actions use it. Both calls hand a request to the root installer and record it
// in the audit trail first; a refusal (nothing staged, a request already waiting,
// nothing to go back to) wraps ErrConflict.
type ApplianceUpdates interface {
	Install(ctx context.Context, actor, version string, reboot bool) error
	Rollback(ctx context.Context, actor string, reboot bool) error
}

// ErrConflict marks an error that refuses a request as asked; handlers answer 409.
var ErrConflict = errors.New("conflict")

type applianceHolder struct {
	mu sync.Mutex
	u  ApplianceUpdates
}

// SetApplianceUpdates connects the install and rollback actions to the appliance's
// self-update (built after auth).
func (a *Authority) SetApplianceUpdates(u ApplianceUpdates) {
	a.appliance.mu.Lock()
	a.appliance.u = u
	a.appliance.mu.Unlock()
}

func (a *Authority) applianceUpdates() (ApplianceUpdates, error) {
	a.appliance.mu.Lock()
	defer a.appliance.mu.Unlock()
	if a.appliance.u == nil {
		return nil, &httpError{http.StatusServiceUnavailable, "self-update is not running"}
	}
	return a.appliance.u, nil
}

func (a *Authority) registerAppliance(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/appliance/install", a.applianceAction(readFields("version", "reboot"), func(ctx context.Context, u ApplianceUpdates, actor string, in input) (string, error) {
		if in["version"] == "" {
			return "", badRequest("version: missing")
		}
		return "install of " + in["version"] + " requested", u.Install(ctx, actor, in["version"], in["reboot"] != "false")
	}))
	mux.HandleFunc("POST /api/v1/appliance/rollback", a.applianceAction(readFields("reboot"), func(ctx context.Context, u ApplianceUpdates, actor string, in input) (string, error) {
		return "rollback requested", u.Rollback(ctx, actor, in["reboot"] != "false")
	}))
}

// applianceAction runs an install or rollback for the request's actor; the request's
// context carries the principal for the audit record. reboot is on unless the input
// says "false": the form's button means "now".
func (a *Authority) applianceAction(read func(*http.Request) (input, error), fn func(context.Context, ApplianceUpdates, string, input) (string, error)) http.HandlerFunc {
	return formAction(a, read, func(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
		u, err := a.applianceUpdates()
		if err != nil {
			return nil, err
		}
		actor, err := Actor(r)
		if err != nil {
			return nil, forbidden("an appliance update needs a logged-in admin")
		}
		status, err := fn(r.Context(), u, actor, in)
		if errors.Is(err, ErrConflict) {
			err = conflict("%v", err)
		}
		return reply(err, status)
	}, back[any]("/", http.StatusAccepted))
}
