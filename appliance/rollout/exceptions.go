package rollout

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
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
// with documented compensating controls. Exceptions are kept in the table
// auth_exceptions (its name from when auth held them; see migrations/0002).
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
func (x Exception) Open(now time.Time) bool {
	return x.State == ExRequested || x.State == ExApproved && now.Before(x.ExpiresAt)
}

// effective is the state at now: an approved exception past its expiry is expired, from
// that instant on, whether or not the sweep has recorded it yet.
func (x Exception) effective(now time.Time) ExceptionState {
	if x.State == ExApproved && !now.Before(x.ExpiresAt) {
		return ExExpired
	}
	return x.State
}

var exCVE = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// MaxExceptionLife bounds an exception's expiry; sites review them weekly and close them.
const MaxExceptionLife = 366 * 24 * time.Hour

const reviewEvery = 7 * 24 * time.Hour

// exTS is how the exception table keeps times (RFC 3339 with nanoseconds, as written
// since the table was made); pt reads it back.
func exTS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

// applyEvent does fn and hands ev to the sink atomically (in a transaction of its own
// without a sink), without keeping ev in the rollout history: exceptions have none.
func (e *Engine) applyEvent(ctx context.Context, ev Event, fn func(*sql.Tx) error) error {
	if e.sink == nil {
		return e.db.Tx(ctx, fn)
	}
	return e.sink.Apply(ctx, ev, fn)
}

// RequestException files a new exception request by actor.
func (e *Engine) RequestException(ctx context.Context, actor string, x Exception) (Exception, error) {
	now := e.now()
	switch {
	case (x.Asset == "") == (x.Ring == ""):
		return x, refusef(ErrInvalid, "name either an asset or a ring")
	case x.Release == "" && x.CVE == "":
		return x, refusef(ErrInvalid, "name a release or a CVE")
	case x.CVE != "" && !exCVE.MatchString(x.CVE):
		return x, refusef(ErrInvalid, "cve must look like CVE-2024-12345, got %q", x.CVE)
	case len(x.Reason) < 10:
		return x, refusef(ErrInvalid, "give the reason (at least 10 characters)")
	case len(x.Controls) < 10:
		return x, refusef(ErrInvalid, "describe the compensating controls (at least 10 characters)")
	case !x.ExpiresAt.After(now) || x.ExpiresAt.Sub(now) > MaxExceptionLife:
		return x, refusef(ErrInvalid, "expires must be in the future and within a year")
	}
	if x.ReviewAt.IsZero() || x.ReviewAt.After(now.Add(reviewEvery)) {
		x.ReviewAt = now.Add(reviewEvery)
	}
	x.State, x.RequestedBy, x.RequestedAt = ExRequested, actor, now
	details := map[string]string{"asset": x.Asset, "ring": x.Ring, "release": x.Release, "cve": x.CVE, "expires": exTS(x.ExpiresAt)}
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	ev := Event{Actor: actor, Action: "exception.request", Details: details, After: audit.Digest(x)}
	err := e.applyEvent(ctx, ev, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO auth_exceptions(asset, ring, release, cve, reason, controls, state, requested_by, requested_at, expires_at, review_at)
			VALUES(?,?,?,?,?,?,?,?,?,?,?)`, x.Asset, x.Ring, x.Release, x.CVE, x.Reason, x.Controls, x.State, x.RequestedBy, exTS(now), exTS(x.ExpiresAt), exTS(x.ReviewAt))
		if err != nil {
			return err
		}
		x.ID, err = res.LastInsertId()
		return err
	})
	return x, err
}

// DecideException approves or rejects a requested exception. The requester cannot
// decide their own (separation of duties).
func (e *Engine) DecideException(ctx context.Context, actor string, id int64, approve bool, remark string) error {
	action, state := "exception.reject", ExRejected
	if approve {
		action, state = "exception.approve", ExApproved
	}
	if remark == "" {
		return refusef(ErrInvalid, "a remark is required")
	}
	return e.changeException(ctx, actor, id, action, remark, func(tx *sql.Tx, x *Exception) error {
		if x.State != ExRequested {
			return refusef(ErrState, "exception %d is %s, not requested", id, x.State)
		}
		if x.RequestedBy == actor {
			return fmt.Errorf("%w: %s requested exception %d and cannot decide it", ErrSeparation, actor, id)
		}
		if approve && !e.now().Before(x.ExpiresAt) {
			return refusef(ErrState, "exception %d expired before it was approved", id)
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, decided_by = ?, decided_at = ?, remark = ? WHERE id = ?`,
			state, actor, exTS(e.now()), remark, id)
		return err
	})
}

// RevokeException ends an approved exception before its expiry.
func (e *Engine) RevokeException(ctx context.Context, actor string, id int64, remark string) error {
	return e.changeException(ctx, actor, id, "exception.revoke", remark, func(tx *sql.Tx, x *Exception) error {
		if x.effective(e.now()) != ExApproved && x.State != ExRequested {
			return refusef(ErrState, "exception %d is %s; only requested or approved ones can be revoked", id, x.effective(e.now()))
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, closed_by = ?, closed_at = ? WHERE id = ?`, ExRevoked, actor, exTS(e.now()), id)
		return err
	})
}

// ReviewException records the weekly review of an open exception; the next is due a
// week later (never after the expiry).
func (e *Engine) ReviewException(ctx context.Context, actor string, id int64, remark string) error {
	return e.changeException(ctx, actor, id, "exception.review", remark, func(tx *sql.Tx, x *Exception) error {
		if !x.Open(e.now()) {
			return refusef(ErrState, "exception %d is %s; only open ones are reviewed", id, x.effective(e.now()))
		}
		next := min(e.now().Add(reviewEvery).UnixNano(), x.ExpiresAt.UnixNano())
		_, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET reviewed_by = ?, reviewed_at = ?, review_at = ? WHERE id = ?`,
			actor, exTS(e.now()), exTS(time.Unix(0, next)), id)
		return err
	})
}

// changeException runs fn on exception id in the transaction that records action by
// actor with the remark.
func (e *Engine) changeException(ctx context.Context, actor string, id int64, action, remark string, fn func(*sql.Tx, *Exception) error) error {
	ev := Event{Actor: actor, Action: action, Object: "exception/" + strconv.FormatInt(id, 10), Details: map[string]string{"remark": remark}}
	return e.applyEvent(ctx, ev, func(tx *sql.Tx) error {
		x, err := exception(ctx, tx, id)
		if err != nil {
			return err
		}
		return fn(tx, &x)
	})
}

const exCols = `id, asset, ring, release, cve, reason, controls, state, requested_by, requested_at, decided_by, decided_at, remark, expires_at, review_at, reviewed_by, reviewed_at, closed_by, closed_at`

func scanException(s scanner) (Exception, error) {
	var x Exception
	var req, dec, exp, rev, revd, closed string
	err := s.Scan(&x.ID, &x.Asset, &x.Ring, &x.Release, &x.CVE, &x.Reason, &x.Controls, &x.State, &x.RequestedBy, &req,
		&x.DecidedBy, &dec, &x.Remark, &exp, &rev, &x.ReviewedBy, &revd, &x.ClosedBy, &closed)
	x.RequestedAt, x.DecidedAt, x.ExpiresAt, x.ReviewAt, x.ReviewedAt, x.ClosedAt = pt(req), pt(dec), pt(exp), pt(rev), pt(revd), pt(closed)
	return x, err
}

func exception(ctx context.Context, q querier, id int64) (Exception, error) {
	x, err := scanException(q.QueryRowContext(ctx, `SELECT `+exCols+` FROM auth_exceptions WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return x, fmt.Errorf("exception %d: %w", id, ErrNotFound)
	}
	return x, err
}

// exceptions lists the exceptions the query's condition selects.
func (e *Engine) exceptions(ctx context.Context, where string, args ...any) ([]Exception, error) {
	return queryAll(ctx, e.db, scanException, `SELECT `+exCols+` FROM auth_exceptions `+where, args...)
}

// Exceptions lists exceptions (only open ones when open is true), with their effective
// state at the current time: an approved one past its expiry shows as expired, and the
// expiry is recorded in the audit trail the first time it is seen.
func (e *Engine) Exceptions(ctx context.Context, open bool) ([]Exception, error) {
	all, err := e.exceptions(ctx, `ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("rollout: exceptions: %w", err)
	}
	now := e.now()
	var out []Exception
	for _, x := range all {
		if x.effective(now) != x.State {
			e.expire(ctx, x)
			x.State = ExExpired
		}
		if open && !x.Open(now) {
			continue
		}
		x.ReviewDue = x.Open(now) && !now.Before(x.ReviewAt)
		out = append(out, x)
	}
	return out, nil
}

// OpenExceptions lists the exceptions still open, for reports.
func (e *Engine) OpenExceptions(ctx context.Context) ([]Exception, error) {
	return e.Exceptions(ctx, true)
}

// expire records that x expired. The actor keeps the name it had when auth held
// exceptions, so that the trail reads the same before and after the move.
func (e *Engine) expire(ctx context.Context, x Exception) {
	ev := Event{Actor: "system:auth", Action: "exception.expired", Object: "exception/" + strconv.FormatInt(x.ID, 10),
		Details: map[string]string{"expires": exTS(x.ExpiresAt)}}
	e.applyEvent(ctx, ev, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_exceptions SET state = ?, closed_by = 'system', closed_at = ? WHERE id = ? AND state = ?`, ExExpired, exTS(x.ExpiresAt), x.ID, ExApproved)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return refusef(ErrState, "already expired") // rolled back: nothing recorded twice
		}
		return nil
	})
}

// ExceptionSubject is what an exception may excuse: a device (by any of its names: ID,
// name), its ring, and a release (by name or ID) with its CVEs.
type ExceptionSubject struct {
	Assets   []string
	Ring     string
	Releases []string
	CVEs     []string
}

// Excused reports whether an approved, unexpired exception covers s right now. An
// exception stops excusing the instant it expires.
func (e *Engine) Excused(ctx context.Context, s ExceptionSubject) (bool, error) {
	now := e.now()
	approved, err := e.exceptions(ctx, `WHERE state = ?`, ExApproved)
	if err != nil {
		return false, fmt.Errorf("rollout: excused: %w", err)
	}
	for _, x := range approved {
		if !now.Before(x.ExpiresAt) {
			continue
		}
		scope := x.Asset != "" && slices.Contains(s.Assets, x.Asset) || x.Ring != "" && x.Ring == s.Ring
		what := x.Release != "" && slices.Contains(s.Releases, x.Release) || x.CVE != "" && slices.Contains(s.CVEs, x.CVE)
		if scope && what {
			return true, nil
		}
	}
	return false, nil
}
