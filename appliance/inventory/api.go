package inventory

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// API serves the inventory's JSON API on the admin listener:
//
//	GET   /api/v1/assets          assets (filters: type, segment, ring, tag, new=1, q)
//	GET   /api/v1/assets.csv      the same as CSV
//	GET   /api/v1/assets/{id}     one asset with its evidence and facts
//	POST  /api/v1/assets/{id}     set admin attributes (JSON Attributes, or a form)
//	GET   /api/v1/sightings       devices seen only by a randomised MAC
//	GET   /api/v1/scans           discovery status
//	POST  /api/v1/scans           start a scan now
//
// Permissions are the auth package's route table's business.
type API struct {
	Inv *Inventory
	// Discovery runs scans; nil answers 503 to scan requests.
	Discovery *Discovery
	// Actor names who makes a request, for the asset's updated_by.
	Actor func(*http.Request) string
	// Error answers a refused request; nil is httpapi.WriteError (JSON). The wiring
	// gives auth.WriteError, which shows a browser's form an error page instead.
	Error func(w http.ResponseWriter, r *http.Request, code int, msg string)
}

func (a API) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if a.Error != nil {
		a.Error(w, r, code, msg)
		return
	}
	httpapi.WriteError(w, code, msg)
}

// Register mounts the API on mux.
func (a API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/assets", a.list)
	mux.HandleFunc("GET /api/v1/assets.csv", a.csv)
	mux.HandleFunc("GET /api/v1/assets/{id}", a.get)
	mux.HandleFunc("POST /api/v1/assets/{id}", a.update)
	mux.HandleFunc("GET /api/v1/sightings", a.sightings)
	mux.HandleFunc("GET /api/v1/scans", a.scanStatus)
	mux.HandleFunc("POST /api/v1/scans", a.scanNow)
}

// FilterFrom reads a Filter from query parameters.
func FilterFrom(q url.Values) Filter {
	return Filter{Type: q.Get("type"), Segment: q.Get("segment"), Ring: q.Get("ring"), Tag: q.Get("tag"),
		NewOnly: q.Get("new") == "1" || q.Get("new") == "true", Query: q.Get("q")}
}

// selected lists the assets the request's query parameters select. When that fails it
// logs the error under op, answers 500 and returns false.
func (a API) selected(w http.ResponseWriter, r *http.Request, op string) ([]Asset, bool) {
	assets, err := a.Inv.List(r.Context(), FilterFrom(r.URL.Query()))
	if err != nil {
		a.Inv.log.Error("inventory api: "+op, "err", err)
		a.fail(w, r, http.StatusInternalServerError, "could not read the inventory")
		return nil, false
	}
	return assets, true
}

func (a API) list(w http.ResponseWriter, r *http.Request) {
	assets, ok := a.selected(w, r, "list")
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	WriteJSON(w, a.Inv.opts.Clock.Now(), assets)
}

func (a API) csv(w http.ResponseWriter, r *http.Request) {
	assets, ok := a.selected(w, r, "csv")
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="patchgate-assets.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	WriteCSV(w, assets)
}

func (a API) get(w http.ResponseWriter, r *http.Request) {
	as, err := a.Inv.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "no such asset")
	case err != nil:
		a.Inv.log.Error("inventory api: get", "err", err)
		a.fail(w, r, http.StatusInternalServerError, "could not read the asset")
	default:
		httpapi.WriteJSON(w, http.StatusOK, as)
	}
}

// formFields are the Attributes a form may set (tags as a space or comma list).
var formFields = []string{"name", "owner", "location", "criticality", "ephi", "support", "eol_date", "ring",
	"last_patch", "compliance", "notes", "hostname", "serial", "type", "vendor", "model", "os", "firmware"}

func (a API) update(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var attrs Attributes
	ret := ""
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if err := httpapi.DecodeJSON(w, r, &attrs, 64<<10); err != nil {
			a.fail(w, r, http.StatusBadRequest, "body: "+err.Error())
			return
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			a.fail(w, r, http.StatusBadRequest, "form: "+err.Error())
			return
		}
		b, _ := json.Marshal(formAttrs(r.PostForm))
		json.Unmarshal(b, &attrs)
		if v := r.PostForm.Get("return"); strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") {
			ret = v
		}
	default:
		a.fail(w, r, http.StatusUnsupportedMediaType, "want application/json or a form")
		return
	}
	by := "admin"
	if a.Actor != nil {
		by = a.Actor(r)
	}
	before, err := a.Inv.Get(r.Context(), id)
	if err == nil {
		var after Asset
		var changed []string
		after, changed, err = a.Inv.Update(r.Context(), id, attrs, by)
		if err == nil && len(changed) > 0 {
			a.Inv.emit(r.Context(), Event{Kind: EventAssetUpdated, AssetID: id, Asset: after.Name, Actor: by,
				Time: a.Inv.opts.Clock.Now(), Request: r, Details: changes(before, after, changed)})
		}
		if err == nil {
			if ret != "" {
				http.Redirect(w, r, ret, http.StatusSeeOther)
				return
			}
			httpapi.WriteJSON(w, http.StatusOK, after)
			return
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "no such asset")
	case errors.Is(err, ErrInvalid):
		a.fail(w, r, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "inventory: update "+id+": "))
	default:
		a.Inv.log.Error("inventory api: update", "err", err)
		a.fail(w, r, http.StatusInternalServerError, "could not update the asset")
	}
}

// formAttrs turns a form into Attributes' JSON shape: only fields present are set.
func formAttrs(f url.Values) map[string]any {
	m := map[string]any{}
	for _, k := range formFields {
		if vs, ok := f[k]; ok && len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	if vs, ok := f["tags"]; ok && len(vs) > 0 {
		m["tags"] = strings.FieldsFunc(vs[0], func(r rune) bool { return r == ',' || r == ' ' })
	}
	return m
}

// changes describes what an update changed, attribute: before -> after.
func changes(before, after Asset, names []string) map[string]string {
	get := func(a Asset, n string) string {
		switch n {
		case "name":
			return a.Name
		case "owner":
			return a.Owner
		case "location":
			return a.Location
		case "criticality":
			return a.Criticality
		case "ephi":
			return a.EPHI
		case "support":
			return a.Support
		case "eol_date":
			return a.EOLDate
		case "ring":
			return a.Ring
		case "last_patch":
			return a.LastPatch
		case "compliance":
			return a.Compliance
		case "notes":
			return a.Notes
		case "hostname":
			return a.Hostname
		case "serial":
			return a.Serial
		case "type":
			return a.Type
		case "vendor":
			return a.Vendor
		case "model":
			return a.Model
		case "os":
			return a.OS
		case "firmware":
			return a.Firmware
		case "tags":
			return strings.Join(a.Tags, " ")
		}
		return ""
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = get(before, n) + " -> " + get(after, n)
	}
	return out
}

func (a API) sightings(w http.ResponseWriter, r *http.Request) {
	s, err := a.Inv.Sightings(r.Context(), 500)
	if err != nil {
		a.Inv.log.Error("inventory api: sightings", "err", err)
		a.fail(w, r, http.StatusInternalServerError, "could not read sightings")
		return
	}
	if s == nil {
		s = []Sighting{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"sightings": s})
}

func (a API) scanStatus(w http.ResponseWriter, r *http.Request) {
	if a.Discovery == nil {
		a.fail(w, r, http.StatusServiceUnavailable, "discovery is not configured")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, a.Discovery.Status())
}

func (a API) scanNow(w http.ResponseWriter, r *http.Request) {
	if a.Discovery == nil {
		a.fail(w, r, http.StatusServiceUnavailable, "discovery is not configured")
		return
	}
	if err := a.Discovery.ScanNow(); err != nil {
		a.fail(w, r, http.StatusConflict, err.Error())
		return
	}
	if ret := r.FormValue("return"); strings.HasPrefix(ret, "/") && !strings.HasPrefix(ret, "//") {
		http.Redirect(w, r, ret, http.StatusSeeOther)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "scan started"})
}
