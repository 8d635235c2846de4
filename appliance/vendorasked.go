package appliance

import (
	"errors"
	"net/http"
	"strings"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/appliance/vendorhost"
)

// registerAskedCandidates serves the one action of the "asked for, not available" list:
// POST /api/v1/vendorhost/asked/candidate (form or JSON: host, path, url, sha256; the
// guard's cross-origin check as for every form) turns a row into a candidate. The
// vendor's file (url, default https://HOST/PATH) is checked once as a url source named
// after the host, verified against the sha256 the admin pins, and staged as a candidate
// of that source (then made a release on /candidates as any other). Audited as
// vendorhost.asked.candidate with who asked; the check itself as source.candidate or
// source.rejected. 201 with the check's status; 404 for a row not in the list, 400 for
// a source the config check would refuse, 422 when the download did not verify.
func (s *System) registerAskedCandidates(svc *supply.Service) {
	if s.updates == nil || s.updates.vendor == nil || s.auth == nil {
		return
	}
	vh, forms := s.updates.vendor, s.auth.Forms()
	s.admin.mux.HandleFunc("POST /api/v1/vendorhost/asked/candidate", func(w http.ResponseWriter, r *http.Request) {
		in, err := forms.Input(r, "host", "path", "url", "sha256")
		if err != nil {
			forms.Fail(w, r, err)
			return
		}
		host, herr := vendorhost.RequestHost(in["host"])
		if herr != nil || !vh.WasAsked(host, in["path"]) {
			forms.Fail(w, r, auth.Refuse(http.StatusNotFound, "vendor host: "+in["host"]+in["path"]+" is not in the asked-for list"))
			return
		}
		u := strings.TrimSpace(in["url"])
		if u == "" {
			u = "https://" + host + in["path"]
		}
		src := supply.Source{Name: host, Kind: supply.KindURL, URL: u, SHA256: strings.ToLower(strings.TrimSpace(in["sha256"]))}
		st, err := svc.CheckOnce(r.Context(), src)
		if errors.Is(err, supply.ErrBadSource) {
			forms.Fail(w, r, auth.Refuse(http.StatusBadRequest, err.Error()))
			return
		} else if err != nil {
			forms.Fail(w, r, err)
			return
		}
		if s.audit != nil {
			e := auth.FromContext(r.Context()).Entry("vendorhost.asked.candidate", "source/"+host,
				map[string]string{"asked": host + in["path"], "url": u, "sha256": src.SHA256, "result": st.Result, "reason": st.Reason})
			if err := s.audit.Record(r.Context(), e); err != nil {
				forms.Fail(w, r, err)
				return
			}
		}
		if st.Result != "ok" {
			forms.Fail(w, r, auth.Refuse(http.StatusUnprocessableEntity, "vendor host: "+u+" did not verify: "+st.Error))
			return
		}
		forms.Done(w, r, in, "/candidates", http.StatusCreated, st)
	})
}
