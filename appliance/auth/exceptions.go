package auth

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
)

// ExceptionState is where an exception is in its life.
type ExceptionState string

// States: requested → approved | rejected; approved → expired (at ExpiresAt, at once)
// | revoked.
const (
	ExRequested ExceptionState = "requested"
	ExApproved  ExceptionState = "approved"
	ExRejected  ExceptionState = "rejected"
	ExExpired   ExceptionState = "expired"
	ExRevoked   ExceptionState = "revoked"
)

// Exception excuses an asset (or a whole ring) from a release or a CVE for a while,
// with documented compensating controls.
type Exception struct {
	ID          int64          `json:"id"`
	Asset       string         `json:"asset,omitempty"`
	Ring        string         `json:"ring,omitempty"`
	Release     string         `json:"release,omitempty"`
	CVE         string         `json:"cve,omitempty"`
	Reason      string         `json:"reason"`
	Controls    string         `json:"compensating_controls"`
	State       ExceptionState `json:"state"`
	RequestedBy string         `json:"requested_by"`
	RequestedAt time.Time      `json:"requested_at"`
	DecidedBy   string         `json:"decided_by,omitempty"`
	DecidedAt   time.Time      `json:"decided_at,omitzero"`
	Remark      string         `json:"remark,omitempty"`
	ExpiresAt   time.Time      `json:"expires_at"`
	ReviewAt    time.Time      `json:"review_at"`
	ReviewedBy  string         `json:"reviewed_by,omitempty"`
	ReviewedAt  time.Time      `json:"reviewed_at,omitzero"`
	ClosedBy    string         `json:"closed_by,omitempty"`
	ClosedAt    time.Time      `json:"closed_at,omitzero"`
	// ReviewDue is set when listing: the weekly review is due.
	ReviewDue bool `json:"review_due"`
}

// Open reports whether the exception still needs attention (requested, or approved and
// not expired) at now.
func (e Exception) Open(now time.Time) bool {
	return e.State == ExRequested || e.State == ExApproved && now.Before(e.ExpiresAt)
}

// effective is the state at now: an approved exception past its expiry is expired, from
// that instant on, whether or not the sweep has recorded it yet.
func (e Exception) effective(now time.Time) ExceptionState {
	if e.State == ExApproved && !now.Before(e.ExpiresAt) {
		return ExExpired
	}
	return e.State
}

var cveRE = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// MaxExceptionLife bounds an exception's expiry; sites review them weekly and close them.
const MaxExceptionLife = 366 * 24 * time.Hour

const reviewEvery = 7 * 24 * time.Hour

// RequestException files a new exception request by p.
func (a *Authority) RequestException(ctx context.Context, p *Principal, e Exception) (Exception, error) {
	now := a.now()
	switch {
	case (e.Asset == "") == (e.Ring == ""):
		return e, badRequest("name either an asset or a ring")
	case e.Release == "" && e.CVE == "":
		return e, badRequest("name a release or a CVE")
	case e.CVE != "" && !cveRE.MatchString(e.CVE):
		return e, badRequest("cve must look like CVE-2024-12345, got %q", e.CVE)
	case len(e.Reason) < 10:
		return e, badRequest("give the reason (at least 10 characters)")
	case len(e.Controls) < 10:
		return e, badRequest("describe the compensating controls (at least 10 characters)")
	case !e.ExpiresAt.After(now) || e.ExpiresAt.Sub(now) > MaxExceptionLife:
		return e, badRequest("expires must be in the future and within a year")
	}
	if e.ReviewAt.IsZero() || e.ReviewAt.After(now.Add(reviewEvery)) {
		e.ReviewAt = now.Add(reviewEvery)
	}
	e.State, e.RequestedBy, e.RequestedAt = ExRequested, p.User, now
	details := map[string]string{"asset": e.Asset, "ring": e.Ring, "release": e.Release, "cve": e.CVE, "expires": ts(e.ExpiresAt)}
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	entry := p.Entry("exception.request", "", details)
	entry.After = audit.Digest(e)
	_, err := a.audit.Apply(ctx, entry, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO auth_exceptions(asset, ring, release, cve, reason, controls, state, requested_by, requested_at, expires_at, review_at)
			VALUES(?,?,?,?,?,?,?,?,?,?,?)`, e.Asset, e.Ring, e.Release, e.CVE, e.Reason, e.Controls, e.State, e.RequestedBy, ts(now), ts(e.ExpiresAt), ts(e.ReviewAt))
		if err != nil {
			return err
		}
		e.ID, err = res.LastInsertId()
		return err
	})
	return e, err
}

// DecideException approves or rejects a requested exception. The requester cannot
// decide their own (separation of duties).
func (a *Authority) DecideException(ctx context.Context, p *Principal, id int64, approve bool, remark string) error {
	action, state := "exception.reject", ExRejected
	if approve {
		action, state = "exception.approve", ExApproved
	}
	if remark == "" {
		return badRequest("a remark is required")
	}
	return a.changeException(ctx, p, id, action, map[string]string{"remark": remark}, func(tx *sql.Tx, e *Exception) error {
		if e.State != ExRequested {
			return conflict("exception %d is %s, not requested", id, e.State)
		}
		if e.RequestedBy == p.User {
			return forbidden("separation of duties: %s requested exception %d and cannot decide it", p.User, id)
		}
		if approve && !a.now().Before(e.ExpiresAt) {
			return conflict("exception %d expired before it was approved", id)
		}
		e.State, e.DecidedBy, e.DecidedAt, e.Remark = state, p.User, a.now(), remark
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, decided_by = ?, decided_at = ?, remark = ? WHERE id = ?`,
			state, p.User, ts(e.DecidedAt), remark, id)
		return err
	})
}

// RevokeException ends an approved exception before its expiry.
func (a *Authority) RevokeException(ctx context.Context, p *Principal, id int64, remark string) error {
	return a.changeException(ctx, p, id, "exception.revoke", map[string]string{"remark": remark}, func(tx *sql.Tx, e *Exception) error {
		if e.effective(a.now()) != ExApproved && e.State != ExRequested {
			return conflict("exception %d is %s; only requested or approved ones can be revoked", id, e.effective(a.now()))
		}
		e.State, e.ClosedBy, e.ClosedAt = ExRevoked, p.User, a.now()
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, closed_by = ?, closed_at = ? WHERE id = ?`, ExRevoked, p.User, ts(e.ClosedAt), id)
		return err
	})
}

// ReviewException records the weekly review of an open exception; the next is due a
// week later (never after the expiry).
func (a *Authority) ReviewException(ctx context.Context, p *Principal, id int64, remark string) error {
	return a.changeException(ctx, p, id, "exception.review", map[string]string{"remark": remark}, func(tx *sql.Tx, e *Exception) error {
		if !e.Open(a.now()) {
			return conflict("exception %d is %s; only open ones are reviewed", id, e.effective(a.now()))
		}
		next := min(a.now().Add(reviewEvery).UnixNano(), e.ExpiresAt.UnixNano())
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET reviewed_by = ?, reviewed_at = ?, review_at = ? WHERE id = ?`,
			p.User, ts(a.now()), ts(time.Unix(0, next)), id)
		return err
	})
}

func (a *Authority) changeException(ctx context.Context, p *Principal, id int64, action string, details map[string]string, fn func(*sql.Tx, *Exception) error) error {
	e := p.Entry(action, "exception/"+strconv.FormatInt(id, 10), details)
	_, err := a.audit.Apply(ctx, e, func(tx *sql.Tx) error {
		ex, err := a.exception(ctx, tx, id)
		if err != nil {
			return err
		}
		e.Before = audit.Digest(ex)
		return fn(tx, &ex)
	})
	return err
}

const exCols = `id, asset, ring, release, cve, reason, controls, state, requested_by, requested_at, decided_by, decided_at, remark, expires_at, review_at, reviewed_by, reviewed_at, closed_by, closed_at`

func scanException(s interface{ Scan(...any) error }) (Exception, error) {
	var e Exception
	var req, dec, exp, rev, revd, closed string
	err := s.Scan(&e.ID, &e.Asset, &e.Ring, &e.Release, &e.CVE, &e.Reason, &e.Controls, &e.State, &e.RequestedBy, &req,
		&e.DecidedBy, &dec, &e.Remark, &exp, &rev, &e.ReviewedBy, &revd, &e.ClosedBy, &closed)
	e.RequestedAt, e.DecidedAt, e.ExpiresAt, e.ReviewAt, e.ReviewedAt, e.ClosedAt = parseTS(req), parseTS(dec), parseTS(exp), parseTS(rev), parseTS(revd), parseTS(closed)
	return e, err
}

func (a *Authority) exception(ctx context.Context, q querier, id int64) (Exception, error) {
	e, err := scanException(q.QueryRowContext(ctx, `SELECT `+exCols+` FROM auth_exceptions WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return e, fmt.Errorf("exception %d: %w", id, ErrNotFound)
	}
	return e, err
}

// Exceptions lists exceptions (only open ones when open is true), with their effective
// state at the current time: an approved one past its expiry shows as expired, and the
// expiry is recorded in the audit trail the first time it is seen.
func (a *Authority) Exceptions(ctx context.Context, open bool) ([]Exception, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT `+exCols+` FROM auth_exceptions ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("auth: exceptions: %w", err)
	}
	var all []Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("auth: exceptions: %w", err)
		}
		all = append(all, e)
	}
	rows.Close()
	now := a.now()
	var out []Exception
	for _, e := range all {
		if e.effective(now) != e.State {
			a.expire(ctx, e)
			e.State = ExExpired
		}
		if open && !e.Open(now) {
			continue
		}
		e.ReviewDue = e.Open(now) && !now.Before(e.ReviewAt)
		out = append(out, e)
	}
	return out, nil
}

func (a *Authority) expire(ctx context.Context, e Exception) {
	a.audit.Apply(ctx, audit.Entry{Actor: "system:auth", Action: "exception.expired", Object: "exception/" + strconv.FormatInt(e.ID, 10),
		Details: map[string]string{"expires": ts(e.ExpiresAt)}}, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, closed_by = 'system', closed_at = ? WHERE id = ? AND state = ?`, ExExpired, ts(e.ExpiresAt), e.ID, ExApproved)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return conflict("already expired") // rolled back: nothing recorded twice
		}
		return nil
	})
}

// Subject is what an exception may excuse: a device (by any of its names: ID, name),
// its ring, and a release (by name or ID) with its CVEs.
type Subject struct {
	Assets   []string
	Ring     string
	Releases []string
	CVEs     []string
}

// Excused reports whether an approved, unexpired exception covers s right now. An
// exception stops excusing the instant it expires.
func (a *Authority) Excused(ctx context.Context, s Subject) (bool, error) {
	now := a.now()
	rows, err := a.db.QueryContext(ctx, `SELECT `+exCols+` FROM auth_exceptions WHERE state = ?`, ExApproved)
	if err != nil {
		return false, fmt.Errorf("auth: excused: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return false, err
		}
		if !now.Before(e.ExpiresAt) {
			continue
		}
		scope := e.Asset != "" && contains(s.Assets, e.Asset) || e.Ring != "" && e.Ring == s.Ring
		what := e.Release != "" && contains(s.Releases, e.Release) || e.CVE != "" && contains(s.CVEs, e.CVE)
		if scope && what {
			return true, nil
		}
	}
	return false, rows.Err()
}

func (a *Authority) registerExceptions(mux *http.ServeMux) {
	mux.HandleFunc("GET /exceptions", a.exceptionsPage)
	mux.HandleFunc("GET /api/v1/exceptions", a.listExceptions)
	mux.HandleFunc("POST /api/v1/exceptions", a.requestException)
	mux.HandleFunc("POST /api/v1/exceptions/{id}/approve", a.decideException(true))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/reject", a.decideException(false))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/revoke", a.exceptionAction(a.RevokeException))
	mux.HandleFunc("POST /api/v1/exceptions/{id}/review", a.exceptionAction(a.ReviewException))
}

func (a *Authority) exceptionsPage(w http.ResponseWriter, r *http.Request) {
	exs, err := a.Exceptions(r.Context(), false)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "exceptions.html", Page{Data: exs})
}

func (a *Authority) listExceptions(w http.ResponseWriter, r *http.Request) {
	exs, err := a.Exceptions(r.Context(), r.URL.Query().Get("open") != "")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if exs == nil {
		exs = []Exception{}
	}
	writeJSON(w, http.StatusOK, exs)
}

func (a *Authority) requestException(w http.ResponseWriter, r *http.Request) {
	in, err := readFields("asset", "ring", "release", "cve", "reason", "compensating_controls", "expires_at", "review_at")(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e := Exception{Asset: in["asset"], Ring: in["ring"], Release: in["release"], CVE: in["cve"], Reason: in["reason"], Controls: in["compensating_controls"]}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{"expires_at", &e.ExpiresAt}, {"review_at", &e.ReviewAt}} {
		if s := in[f.key]; s != "" {
			t, err := parseDate(s)
			if err != nil {
				a.fail(w, r, badRequest("%s: %v", f.key, err))
				return
			}
			*f.dst = t
		}
	}
	e, err = a.RequestException(r.Context(), FromContext(r.Context()), e)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/exceptions", http.StatusCreated, e)
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date like 2026-04-30 or an RFC 3339 time, got %q", s)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("bad id %q", r.PathValue("id"))
	}
	return id, nil
}

func (a *Authority) decideException(approve bool) http.HandlerFunc {
	return a.exceptionAction(func(ctx context.Context, p *Principal, id int64, remark string) error {
		return a.DecideException(ctx, p, id, approve, remark)
	})
}

func (a *Authority) exceptionAction(fn func(context.Context, *Principal, int64, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := readFields("remark")(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		id, err := pathID(r)
		if err == nil {
			err = fn(r.Context(), FromContext(r.Context()), id, in["remark"])
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		done(w, r, in, "/exceptions", http.StatusOK, map[string]string{"status": "ok"})
	}
}
