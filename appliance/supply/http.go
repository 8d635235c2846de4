package supply

import (
	"errors"
	"net/http"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// Register mounts the sources API on mux: GET /api/v1/sources (every source's status),
// GET /api/v1/candidates (?source= to filter); see RegisterCheck for the check now. Who
// may call them is decided by appliance/auth.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/sources", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, s.Sources())
	})
	mux.HandleFunc("GET /api/v1/candidates", func(w http.ResponseWriter, r *http.Request) {
		cs, err := s.Candidates(r.Context(), r.URL.Query().Get("source"))
		if err != nil {
			httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, cs)
	})
}

// RegisterCheck mounts POST /api/v1/sources/{name}/check (a check now; 202 with the
// status before it) on mux. The appliance mounts its own, which also answers the
// Sources page's form; this one is for a Service used without it.
func (s *Service) RegisterCheck(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/sources/{name}/check", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.CheckSoon(r.PathValue("name"))
		if errors.Is(err, ErrUnknownSource) {
			httpapi.WriteError(w, http.StatusNotFound, err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusAccepted, st)
	})
}
