package appliance

import (
	"context"
	"errors"
	"net/http"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// buildRollout builds the rollout engine: rings, windows, releases and rollouts in the
// store, evaluated on the clock; the serving gate in front of the cache's targets (when
// rollout.gate is enforce) and the delivery count behind it; the agent API on the
// distribution listener, the admin API on the admin listener (actors from auth), the
// inventory as the engine's devices (and the engine as the inventory's firmware
// observer), and the status panel.
func (s *System) buildRollout(ctx context.Context) error {
	c := s.cfg.Rollout
	cfg := c.Config(s.segments.NameOf)
	opts := rollout.Options{DB: s.db, Clock: s.clock, Log: s.log.With("svc", "rollout"), Registerer: s.registry}
	if s.audit != nil {
		opts.Events = s.notifyRollout(rolloutAudit{s.audit}) // audit.go, notifications.go
	}
	if s.updates != nil {
		opts.Cache = s.updates.cache
	}
	if s.assets != nil { // inventory_rollout.go
		opts.Assets, opts.Facts = inventoryAssets{s.assets}, inventoryAssets{s.assets}
	}
	e, err := rollout.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	s.rollout = e
	s.services = append(s.services, e)
	if s.assets != nil {
		s.assets.SetFirmwareObserver(e) // a scan reading a release's version completes agentless deployments
	}
	e.RegisterAgentAPI(s.dist.mux)
	actor := rollout.LoopbackActor
	if s.auth != nil {
		actor = auth.Actor
		// The approvals and exceptions pages, answered the way auth's own pages are.
		rollout.NewPages(e, actor, rolloutForms{s.auth.Forms()}).Register(s.admin.mux)
		// The admin pages' forms post to the API routes themselves (ui.go).
		rollout.NewAPI(e, actor).WithForms(rolloutForms{s.auth.Forms()}).Register(s.admin.mux)
		s.registerAssetPage() // assetpage.go
	} else {
		rollout.NewAPI(e, actor).Register(s.admin.mux)
	}
	if s.updates != nil && c.Gate == "enforce" {
		s.updates.handler.Gate = servingGate{g: e.Gate()} // distribution.go
	}
	s.AddPanel(rolloutPanel(e))
	return nil
}

// rolloutForms is auth's request handling for the rollout engine's approvals and
// exceptions pages, with the engine's refusals answered with their status.
type rolloutForms struct{ auth.Forms }

func (f rolloutForms) Fail(w http.ResponseWriter, r *http.Request, err error) {
	f.Forms.Fail(w, r, rolloutError(err))
}

// rolloutError turns the engine's refusals into answers with the right status.
func rolloutError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rollout.ErrSeparation):
		return auth.Refuse(http.StatusForbidden, err.Error())
	case errors.Is(err, rollout.ErrState):
		return auth.Refuse(http.StatusConflict, err.Error())
	case errors.Is(err, rollout.ErrNotFound):
		return auth.Refuse(http.StatusNotFound, err.Error())
	case errors.Is(err, rollout.ErrInvalid):
		return auth.Refuse(http.StatusBadRequest, err.Error())
	case errors.Is(err, rollout.ErrUnauthenticated):
		return auth.Refuse(http.StatusUnauthorized, err.Error())
	}
	return err
}
