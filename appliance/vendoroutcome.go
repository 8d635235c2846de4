package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/httpapi"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/vendorhost"
)

// assetIDOf names the inventory asset that last held a requester's address ("" none).
func (s *System) assetIDOf(a netip.Addr) string {
	if s.assets == nil {
		return ""
	}
	as, ok, err := s.assets.ByAddr(context.Background(), a)
	if err != nil || !ok {
		return ""
	}
	return as.ID
}

// vendorOutcome records a change of a vendor host read-back result in the audit trail:
// vendorhost.outcome.not_yet (a device fetched a target), .installed (discovery read the
// target's version), .mismatch (another version past the grace); and lets it decide the
// asset's rollout deployments of that target (rolloutReadBack).
func (s *System) vendorOutcome(ctx context.Context, o vendorhost.Outcome) {
	s.rolloutReadBack(ctx, o)
	if s.audit == nil {
		return
	}
	d := map[string]string{"target": o.Repo + "/" + o.Target, "url": o.URL, "version": o.Version, "device": o.Device.String()}
	if o.Seen != "" {
		d["seen"] = o.Seen
	}
	if o.Asset != "" {
		d["asset"] = o.Asset
	}
	err := s.audit.Record(ctx, audit.Entry{Actor: "system:vendorhost", Source: o.Device.String(),
		Action: "vendorhost.outcome." + string(o.State), Object: "asset/" + o.AssetID, Details: d})
	if err != nil {
		s.log.Error("audit: vendor host read-back not recorded", "err", err, "asset", o.AssetID)
	}
}

// rolloutReadBack hands a read-back to the rollout engine: installed makes the asset's
// deployments of the target succeeded, mismatch failed with the version seen, and a
// reading that is no version leaves them pending with the string shown. The grace
// (vendorhost.outcome_grace) counts from the fetch, which the gate admits only inside
// the device's window: so "within the window plus the grace".
func (s *System) rolloutReadBack(ctx context.Context, o vendorhost.Outcome) {
	if s.rollout == nil || o.AssetID == "" {
		return
	}
	x := rollout.ReadBack{AssetID: o.AssetID, Repo: o.Repo, Target: o.Target}
	switch {
	case o.State == vendorhost.OutcomeInstalled:
		x.State, x.Detail = rollout.DepSucceeded, fmt.Sprintf("read back version %q after the vendor host fetch", o.Seen)
	case o.State == vendorhost.OutcomeMismatch:
		x.State, x.Detail = rollout.DepFailed, fmt.Sprintf("version seen %q, want %q (past the grace after the fetch)", o.Seen, o.Version)
	case o.Unparsed:
		x.Detail = fmt.Sprintf("version seen %q does not parse; pending", o.Seen)
	default:
		return
	}
	if _, err := s.rollout.ExternalOutcome(ctx, "system:vendorhost", x); err != nil {
		s.log.Error("rollout: vendor host read-back not applied", "err", err, "asset", o.AssetID, "target", o.Repo+"/"+o.Target)
	}
}

// firmwareObservers hands each firmware reading of the inventory to several observers
// (the rollout engine and the vendor hosts' read-back).
type firmwareObservers []inventory.FirmwareObserver

func (fs firmwareObservers) ObserveFirmware(ctx context.Context, assetID, version string) (int, error) {
	n := 0
	var errs []error
	for _, f := range fs {
		k, err := f.ObserveFirmware(ctx, assetID, version)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// linkVendorOutcomes connects the vendor hosts' read-back to the inventory (after the
// rollout engine, which observes firmware too) and serves an asset's results at
// GET /api/v1/assets/{id}/vendor-outcomes.
func (s *System) linkVendorOutcomes(context.Context) error {
	if s.assets == nil || s.updates == nil || s.updates.vendor == nil {
		return nil
	}
	vh := s.updates.vendor
	obs := firmwareObservers{vh}
	if s.rollout != nil {
		obs = append(firmwareObservers{s.rollout}, vh)
	}
	s.assets.SetFirmwareObserver(obs)
	s.admin.mux.HandleFunc("GET /api/v1/assets/{id}/vendor-outcomes", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := s.assets.Get(r.Context(), id); errors.Is(err, inventory.ErrNotFound) {
			httpapi.WriteError(w, http.StatusNotFound, "no such asset")
			return
		} else if err != nil {
			s.log.Error("vendor outcomes: read the asset", "asset", id, "err", err)
			httpapi.WriteError(w, http.StatusInternalServerError, "could not read the asset")
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"asset_id": id, "outcomes": vh.Outcomes(id)})
	})
	return nil
}
