package appliance

import (
	"errors"
	"net/http"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// assetPage is what templates/asset.html gets: one asset with its evidence, its
// deployments and the audit lines about it, and the choices its forms offer. The forms
// post to the API routes (POST /api/v1/assets/{id}, POST /api/v1/exceptions), so the
// page adds no second way to change anything.
type assetPage struct {
	Asset       inventory.Asset
	Deployments []*rollout.Deployment
	Audit       []audit.Record
	Rings       []rollout.Ring
	Releases    []*rollout.Release
	Criticality []string
	EPHI        []string
}

// assetPageLines bounds the deployments and audit lines the asset page shows.
const assetPageLines = 50

// registerAssetPage mounts GET /inventory/{id} (inventory.read in auth.AdminRoutes).
func (s *System) registerAssetPage() {
	if s.auth == nil || s.assets == nil {
		return
	}
	forms := s.auth.Forms()
	s.admin.mux.HandleFunc("GET /inventory/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		a, err := s.assets.Get(ctx, r.PathValue("id"))
		if errors.Is(err, inventory.ErrNotFound) {
			forms.Fail(w, r, auth.Refuse(http.StatusNotFound, "no such asset"))
			return
		}
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		pg := assetPage{Asset: a, Criticality: []string{"", "low", "medium", "high", "critical"}, EPHI: []string{"", "unknown", "yes", "no"}}
		if s.rollout != nil {
			if pg.Deployments, err = s.rollout.Deployments(ctx, rollout.DeploymentFilter{AssetID: a.ID, Limit: assetPageLines}); err == nil {
				if pg.Rings, err = s.rollout.Rings(ctx); err == nil {
					pg.Releases, err = s.rollout.Releases(ctx)
				}
			}
			if err != nil {
				forms.Fail(w, r, err)
				return
			}
		}
		if s.audit != nil {
			if pg.Audit, err = s.audit.Records(ctx, audit.Query{Object: "asset/" + a.ID, Newest: true, Limit: assetPageLines}); err != nil {
				forms.Fail(w, r, err)
				return
			}
		}
		forms.Render(w, r, "asset.html", pg)
	})
}
