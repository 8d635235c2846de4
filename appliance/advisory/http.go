package advisory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// AssetExposure is one asset's open findings in numbers.
type AssetExposure struct {
	AssetID      string         `json:"asset_id"`
	Asset        string         `json:"asset"`
	Open         int            `json:"open"`
	BySeverity   map[string]int `json:"by_severity"`
	Exploited    int            `json:"exploited"`
	Overdue      int            `json:"overdue"`
	Ambiguous    int            `json:"ambiguous"`
	NextDeadline time.Time      `json:"next_deadline,omitzero"`
}

// Exposure is the exposure page's data: every asset with findings, the findings
// (open first by deadline, then the ambiguous ones), and the feeds. AssetID, when set,
// is the one asset the findings were limited to (the per-asset list).
type Exposure struct {
	Now      time.Time       `json:"now"`
	AssetID  string          `json:"asset_id,omitempty"`
	Assets   []AssetExposure `json:"assets"`
	Findings []Finding       `json:"findings"`
	Feeds    []FeedStatus    `json:"feeds"`
	Sources  []SourceInfo    `json:"sources"`
}

// OpenFindings are e's findings counted as open (the page's findings table).
func (e *Exposure) OpenFindings() []Finding {
	return slices.DeleteFunc(slices.Clone(e.Findings), func(f Finding) bool { return f.Ambiguous })
}

// AmbiguousFindings are e's ambiguous findings: shown apart with their reason (the
// evidence), never counted.
func (e *Exposure) AmbiguousFindings() []Finding {
	return slices.DeleteFunc(slices.Clone(e.Findings), func(f Finding) bool { return !f.Ambiguous })
}

// Exposure gathers the exposure page's data.
func (s *Service) Exposure(ctx context.Context) (*Exposure, error) { return s.ExposureOf(ctx, "") }

// ExposureOf gathers the exposure page's data for one asset (every asset when
// assetID is empty): the per-asset findings list.
func (s *Service) ExposureOf(ctx context.Context, assetID string) (*Exposure, error) {
	fs, err := s.Findings(ctx, assetID, false)
	if err != nil {
		return nil, err
	}
	srcs, err := s.Sources(ctx)
	if err != nil {
		return nil, err
	}
	e := &Exposure{Now: s.opts.Clock.Now(), AssetID: assetID, Findings: fs, Feeds: s.Feeds(), Sources: srcs, Assets: []AssetExposure{}}
	slices.SortStableFunc(e.Findings, func(a, b Finding) int {
		if a.Ambiguous != b.Ambiguous {
			if a.Ambiguous {
				return 1
			}
			return -1
		}
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return severityRank(b.Severity) - severityRank(a.Severity)
	})
	by := map[string]*AssetExposure{}
	for _, f := range fs {
		ax := by[f.AssetID]
		if ax == nil {
			ax = &AssetExposure{AssetID: f.AssetID, Asset: f.Asset, BySeverity: map[string]int{}}
			by[f.AssetID] = ax
		}
		if f.Ambiguous {
			ax.Ambiguous++
			continue
		}
		ax.Open++
		ax.BySeverity[f.Severity]++
		if f.Exploited {
			ax.Exploited++
		}
		if f.Overdue {
			ax.Overdue++
		}
		if !f.Deadline.IsZero() && (ax.NextDeadline.IsZero() || f.Deadline.Before(ax.NextDeadline)) {
			ax.NextDeadline = f.Deadline
		}
	}
	for _, ax := range by {
		e.Assets = append(e.Assets, *ax)
	}
	slices.SortFunc(e.Assets, func(a, b AssetExposure) int {
		if a.Exploited != b.Exploited {
			return b.Exploited - a.Exploited
		}
		if a.Open != b.Open {
			return b.Open - a.Open
		}
		return strings.Compare(a.Asset, b.Asset)
	})
	return e, nil
}

// Register mounts the API on mux: GET /api/v1/exposure (every asset and open or
// ambiguous finding), GET /api/v1/exposure/{asset} (one asset's findings; ?closed=1
// adds the closed ones), GET /api/v1/advisory/feeds (feeds and stored deliveries),
// POST /api/v1/advisory/feeds/{name}/fetch (a fetch now, answered with the feed's
// status after it) and POST /api/v1/advisory/import?name=FILE (the file as the body:
// a KEV catalog, an OSV record or list, or a zip). Who may call them is decided by
// appliance/auth; actor names the caller for record (may be nil).
func (s *Service) Register(mux *http.ServeMux, record func(r *http.Request, action, object string, details map[string]string)) {
	if record == nil {
		record = func(*http.Request, string, string, map[string]string) {}
	}
	mux.HandleFunc("GET /api/v1/exposure", func(w http.ResponseWriter, r *http.Request) {
		e, err := s.Exposure(r.Context())
		if err != nil {
			httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, e)
	})
	mux.HandleFunc("GET /api/v1/exposure/{asset}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("asset")
		fs, err := s.Findings(r.Context(), id, r.URL.Query().Get("closed") == "1")
		if err != nil {
			httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if fs == nil {
			known, err := s.knownAsset(r.Context(), id)
			if err != nil {
				httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
				return
			}
			if !known {
				httpapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("advisory: no asset %q", id))
				return
			}
			fs = []Finding{}
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"asset_id": r.PathValue("asset"), "findings": fs})
	})
	mux.HandleFunc("GET /api/v1/advisory/feeds", func(w http.ResponseWriter, r *http.Request) {
		srcs, err := s.Sources(r.Context())
		if err != nil {
			httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"feeds": s.Feeds(), "sources": srcs})
	})
	mux.HandleFunc("POST /api/v1/advisory/feeds/{name}/fetch", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Fetch(r.Context(), r.PathValue("name"))
		if errors.Is(err, ErrUnknownFeed) {
			httpapi.WriteError(w, http.StatusNotFound, err.Error())
			return
		}
		record(r, "advisory.fetch", "advisory/"+st.Name, map[string]string{"result": st.Result, "reason": st.Reason})
		httpapi.WriteJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /api/v1/advisory/import", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.sec.MaxSize)))
		if err != nil {
			httpapi.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("advisory: import: body larger than max_size %d bytes", int64(s.sec.MaxSize)))
			return
		}
		res, err := s.Import(r.Context(), r.URL.Query().Get("name"), data)
		if err != nil {
			record(r, "advisory.import.refused", "advisory/"+res.Source, map[string]string{"reason": reasonOf(err), "error": err.Error()})
			httpapi.WriteError(w, http.StatusBadRequest, "advisory: "+err.Error())
			return
		}
		record(r, "advisory.import", "advisory/"+res.Source, map[string]string{
			"advisories": fmt.Sprint(res.Advisories), "kev_entries": fmt.Sprint(res.KEV)})
		httpapi.WriteJSON(w, http.StatusOK, res)
	})
}

// knownAsset reports whether the inventory has an asset id.
func (s *Service) knownAsset(ctx context.Context, id string) (bool, error) {
	if s.opts.Assets == nil {
		return false, nil
	}
	as, err := s.opts.Assets.MatchAssets(ctx)
	if err != nil {
		return false, fmt.Errorf("advisory: assets: %w", err)
	}
	return slices.ContainsFunc(as, func(a Asset) bool { return a.ID == id }), nil
}
