package audit

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// Handler serves the audit trail on the admin listener: the /audit page, the records
// as JSON, the export, the checkpoints and a verification. Its routes' permissions are
// in auth.AdminRoutes. actor names who asks, for the record of an export.
type Handler struct {
	log   *Log
	pages httpapi.Renderer
	actor func(*http.Request) Entry
}

// NewHandler returns the handler; entry returns the audit entry skeleton (actor, role,
// method, source) for a request.
func NewHandler(l *Log, pages httpapi.Renderer, entry func(*http.Request) Entry) *Handler {
	return &Handler{log: l, pages: pages, actor: entry}
}

// Register mounts the routes.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /audit", h.page)
	mux.HandleFunc("GET /api/v1/audit", h.list)
	mux.HandleFunc("GET /api/v1/audit/export", h.export)
	mux.HandleFunc("GET /api/v1/audit/checkpoints", h.checkpoints)
	mux.HandleFunc("GET /api/v1/audit/verify", h.verify)
}

// Page is what templates/audit.html gets.
type Page struct {
	Stats   Stats
	Records []Record
	Action  string
	Report  *Report
	// Q is the search text, Limit the page size; Next is the query of the next (older)
	// page, "" on the last.
	Q     string
	Limit int
	Next  string
}

// The page sizes of the /audit page (the JSON API allows up to 10000 with limit).
const (
	pageSize    = 100
	maxPageSize = 500
)

func parseQueryTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date like 2026-01-31 or an RFC 3339 time, got %q", s)
}

func (h *Handler) query(r *http.Request) (Query, error) {
	v := r.URL.Query()
	q := Query{Action: v.Get("action"), Object: v.Get("object"), Text: v.Get("q"), Limit: 200, Newest: true}
	if len(q.Text) > 200 {
		return q, fmt.Errorf("q: at most 200 characters, got %d", len(q.Text))
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return q, fmt.Errorf("before: want a record number, got %q", s)
		}
		q.Before = n
	}
	var err error
	if q.From, err = parseQueryTime(r.URL.Query().Get("from")); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseQueryTime(r.URL.Query().Get("to")); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return q, fmt.Errorf("limit: want 1-10000, got %q", s)
		}
		q.Limit = n
	}
	return q, nil
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("limit") == "" {
		v := r.URL.Query()
		v.Set("limit", strconv.Itoa(pageSize))
		r.URL.RawQuery = v.Encode()
	}
	q, err := h.query(r)
	if err == nil && q.Limit > maxPageSize {
		err = fmt.Errorf("limit: the page shows at most %d records, got %d", maxPageSize, q.Limit)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	recs, err := h.log.Records(r.Context(), q)
	if err != nil {
		http.Error(w, "audit: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pg := Page{Stats: h.log.Stats(), Records: recs, Action: q.Action, Q: q.Text, Limit: q.Limit}
	if len(recs) == q.Limit && recs[len(recs)-1].Seq > 1 {
		v := r.URL.Query()
		v.Set("before", strconv.FormatUint(recs[len(recs)-1].Seq, 10))
		v.Del("verify")
		pg.Next = v.Encode()
	}
	if r.URL.Query().Get("verify") != "" {
		rep, err := h.log.Verify(r.Context())
		if err != nil {
			rep = Report{Problem: err.Error()}
		}
		pg.Report = &rep
	}
	h.pages.Render(w, "audit.html", pg)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q, err := h.query(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	recs, err := h.log.Records(r.Context(), q)
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if recs == nil {
		recs = []Record{}
	}
	httpapi.WriteJSON(w, http.StatusOK, recs)
}

func (h *Handler) export(w http.ResponseWriter, r *http.Request) {
	q, err := h.query(r)
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if err == nil && format != "csv" && format != "json" {
		err = fmt.Errorf("format: want csv or json, got %q", format)
	}
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	e := h.actor(r)
	e.Action, e.Object = "audit.export", "audit"
	e.Details = map[string]string{"from": q.From.Format(time.RFC3339), "to": q.To.Format(time.RFC3339), "format": format}
	if err := h.log.Record(r.Context(), e); err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	ct := map[string]string{"csv": "text/csv; charset=utf-8", "json": "application/json"}[format]
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="patchgate-audit-%s.%s"`, time.Now().UTC().Format("20060102T150405Z"), format))
	if err := Export(r.Context(), h.log.db.DB, q.From, q.To, format, w); err != nil {
		h.log.log.Error("audit export failed midway", "err", err)
	}
}

// CheckpointSet is the checkpoints with the public key that verifies them.
type CheckpointSet struct {
	PublicKeyPEM string       `json:"public_key_pem"`
	Checkpoints  []Checkpoint `json:"checkpoints"`
}

func (h *Handler) checkpoints(w http.ResponseWriter, r *http.Request) {
	pub, _ := os.ReadFile(filepath.Join(h.log.dir, PublicKeyFile))
	cps, err := ReadCheckpoints(filepath.Join(h.log.dir, CheckpointsFile))
	if err != nil && !os.IsNotExist(unwrapAll(err)) {
		httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if cps == nil {
		cps = []Checkpoint{}
	}
	httpapi.WriteJSON(w, http.StatusOK, CheckpointSet{PublicKeyPEM: string(pub), Checkpoints: cps})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	rep, err := h.log.Verify(r.Context())
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rep)
}

// Verify checks the trail this Log writes (see the package function Verify).
func (l *Log) Verify(ctx context.Context) (Report, error) {
	l.mu.Lock() // no write in the middle of the check
	defer l.mu.Unlock()
	return Verify(ctx, l.db.DB, l.dir, VerifyOptions{})
}
