package rollout

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// The pages of releases, rollouts, rings and windows. They only read; each form on
// them posts to the admin API's own route (API.WithForms), so a browser and an API
// client go through the same handler and the same permission in auth's table.

// ReleasesPage is what templates/releases.html gets.
type ReleasesPage struct {
	Releases   []*Release
	Severities []Severity
}

// RolloutsPage is what templates/rollouts.html gets: the rollouts, and for the new
// rollout form the releases and one stage row per ring with the default thresholds.
type RolloutsPage struct {
	Rollouts []*Rollout
	Releases []*Release
	Stages   []Stage
	Release  int64 // the release to preselect (?release=ID, from the releases page)
}

// RolloutPage is what templates/rollout.html gets.
type RolloutPage struct {
	Rollout *Rollout
	Events  []Event
}

// RingsPage is what templates/rings.html gets: the rings with the devices in each
// (as the engine decides membership), and the devices in none.
type RingsPage struct {
	Rings   []RingMembers
	NoRing  []Asset
	Default string
}

// RingMembers is a ring and the devices in it.
type RingMembers struct {
	Ring
	Members []Asset
}

// WindowsPage is what templates/windows.html gets.
type WindowsPage struct {
	Windows  []WindowPreview
	Openings []RingOpening
}

// WindowPreview is a window with its next openings.
type WindowPreview struct {
	Window
	Next  []Opening
	Error string // the window cannot be compiled
}

// previewOpenings is how many next openings the windows page shows per window.
const previewOpenings = 5

// WindowPreviews returns every window with its next n openings from now.
func (e *Engine) WindowPreviews(ctx context.Context, n int) ([]WindowPreview, error) {
	ws, err := e.Windows(ctx)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	out := make([]WindowPreview, 0, len(ws))
	for _, w := range ws {
		p := WindowPreview{Window: w}
		if s, err := w.Compile(); err != nil {
			p.Error = err.Error()
		} else {
			p.Next = s.Next(now, n)
		}
		out = append(out, p)
	}
	return out, nil
}

// Membership returns the rings with the devices the engine puts in each, and the
// devices in no ring.
func (e *Engine) Membership(ctx context.Context) ([]RingMembers, []Asset, error) {
	rings, err := e.Rings(ctx)
	if err != nil {
		return nil, nil, err
	}
	assets, err := e.inventory().List(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("rollout: membership: %w", err)
	}
	out := make([]RingMembers, len(rings))
	for i, r := range rings {
		out[i].Ring = r
	}
	var none []Asset
	for _, a := range assets {
		name := e.ringOf(a, rings)
		i := slices.IndexFunc(out, func(m RingMembers) bool { return m.Name == name })
		if i < 0 {
			none = append(none, a)
			continue
		}
		out[i].Members = append(out[i].Members, a)
	}
	return out, none, nil
}

// registerManage mounts the pages of releases, rollouts, rings and windows.
func (p *Pages) registerManage(mux *http.ServeMux) {
	mux.HandleFunc("GET /releases", p.page("releases.html", func(r *http.Request) (any, error) {
		rels, err := p.e.Releases(r.Context())
		return ReleasesPage{Releases: rels, Severities: Severities}, err
	}))
	mux.HandleFunc("GET /rollouts", p.page("rollouts.html", func(r *http.Request) (any, error) {
		ctx := r.Context()
		var pg RolloutsPage
		var err error
		if s := r.URL.Query().Get("release"); s != "" {
			if pg.Release, err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, refusef(ErrInvalid, "release: %q is not a release id", s)
			}
		}
		if pg.Rollouts, err = p.e.Rollouts(ctx); err != nil {
			return nil, err
		}
		if pg.Releases, err = p.e.Releases(ctx); err != nil {
			return nil, err
		}
		rings, err := p.e.Rings(ctx)
		for i, rg := range rings {
			st := DefaultStage(rg.Name)
			if i == len(rings)-1 {
				st.Soak = 0
			}
			pg.Stages = append(pg.Stages, st)
		}
		return pg, err
	}))
	mux.HandleFunc("GET /rollouts/{id}", p.page("rollout.html", func(r *http.Request) (any, error) {
		id, err := formID(r)
		if err != nil {
			return nil, err
		}
		ro, err := p.e.Rollout(r.Context(), id)
		if err != nil {
			return nil, err
		}
		evs, err := p.e.Events(r.Context(), id, 200)
		return RolloutPage{Rollout: ro, Events: evs}, err
	}))
	mux.HandleFunc("GET /rings", p.page("rings.html", func(r *http.Request) (any, error) {
		rings, none, err := p.e.Membership(r.Context())
		return RingsPage{Rings: rings, NoRing: none, Default: p.e.cfg.DefaultRing}, err
	}))
	mux.HandleFunc("GET /windows", p.page("windows.html", func(r *http.Request) (any, error) {
		ws, err := p.e.WindowPreviews(r.Context(), previewOpenings)
		if err != nil {
			return nil, err
		}
		ops, err := p.e.Openings(r.Context())
		return WindowsPage{Windows: ws, Openings: ops}, err
	}))
}
