package appliance

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/supply"
)

// registerSourcesPage mounts the Sources page (GET /sources, rollout.read: each source,
// its kind, last check and result, next check, staged candidates, and a "check now"
// button) and POST /api/v1/sources/{name}/check (rollout.request: a form from the page,
// redirected back, or the API's 202 with the status). Without the authority (no admin
// accounts) only the API's check is mounted.
func (s *System) registerSourcesPage(svc *supply.Service) {
	if s.auth == nil {
		svc.RegisterCheck(s.admin.mux)
		return
	}
	forms := s.auth.Forms()
	s.admin.mux.HandleFunc("GET /sources", func(w http.ResponseWriter, r *http.Request) {
		page, err := sourcesPage(r.Context(), svc, s.clock.Now())
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		forms.Render(w, r, "sources.html", page)
	})
	s.admin.mux.HandleFunc("POST /api/v1/sources/{name}/check", func(w http.ResponseWriter, r *http.Request) {
		in, err := forms.Input(r, "return")
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		st, err := svc.CheckSoon(r.PathValue("name"))
		if errors.Is(err, supply.ErrUnknownSource) {
			forms.Fail(w, r, auth.Refuse(http.StatusNotFound, err.Error()))
			return
		}
		forms.Done(w, r, in, "/sources", http.StatusAccepted, st)
	})
}

// SourcesPage is the Sources page's data: every configured source, in config order.
type SourcesPage struct {
	Now     time.Time   `json:"now"`
	Sources []SourceRow `json:"sources"`
}

// SourceRow is one source's status with its newest candidates (at most sourceLatest).
type SourceRow struct {
	supply.Status
	Latest []supply.Candidate `json:"latest"`
}

const sourceLatest = 3

func sourcesPage(ctx context.Context, svc *supply.Service, now time.Time) (SourcesPage, error) {
	page := SourcesPage{Now: now, Sources: []SourceRow{}}
	for _, st := range svc.Sources() {
		cs, err := svc.Candidates(ctx, st.Name)
		if err != nil {
			return SourcesPage{}, err
		}
		page.Sources = append(page.Sources, SourceRow{Status: st, Latest: cs[:min(len(cs), sourceLatest)]})
	}
	return page, nil
}
