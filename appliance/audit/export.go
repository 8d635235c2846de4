package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Query selects records. Zero times are open ends; To is exclusive. Action matches a
// whole action or, ending in ".", a prefix ("rollout."). Limit 0 means no limit; with
// Newest the last Limit records are returned, newest first. After, when not 0, keeps
// only the records numbered after it (a reader resuming from a cursor).
type Query struct {
	From, To time.Time
	Action   string
	// Object matches one object exactly ("asset/ID"); Text any record whose actor,
	// action, object or details contain it (case-insensitive).
	Object string
	Text   string
	After  uint64
	// Before keeps the records older than this sequence number (the next page of a
	// newest-first listing).
	Before uint64
	Limit  int
	Newest bool
}

// Records returns the records matching q from the database.
func Records(ctx context.Context, db *sql.DB, q Query) ([]Record, error) {
	var where []string
	var args []any
	if !q.From.IsZero() {
		where, args = append(where, "time >= ?"), append(args, q.From.UTC().Format(timeFormat))
	}
	if !q.To.IsZero() {
		where, args = append(where, "time < ?"), append(args, q.To.UTC().Format(timeFormat))
	}
	if q.After > 0 {
		where, args = append(where, "seq > ?"), append(args, q.After)
	}
	if q.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, q.Before)
	}
	if q.Object != "" {
		where, args = append(where, "object = ?"), append(args, q.Object)
	}
	if q.Text != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(q.Text)) + "%"
		where = append(where, `(lower(actor) LIKE ? ESCAPE '\' OR lower(action) LIKE ? ESCAPE '\' OR lower(object) LIKE ? ESCAPE '\' OR lower(details) LIKE ? ESCAPE '\')`)
		args = append(args, like, like, like, like)
	}
	if q.Action != "" {
		if strings.HasSuffix(q.Action, ".") {
			where, args = append(where, "substr(action, 1, ?) = ?"), append(args, len(q.Action), q.Action)
		} else {
			where, args = append(where, "action = ?"), append(args, q.Action)
		}
	}
	query := `SELECT seq, time, actor, role, auth_method, source, action, object, before, after, details, prev, hash FROM audit_records`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Newest {
		query += " ORDER BY seq DESC"
	} else {
		query += " ORDER BY seq"
	}
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: query: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: query: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Records returns the records matching q.
func (l *Log) Records(ctx context.Context, q Query) ([]Record, error) {
	return Records(ctx, l.db.DB, q)
}

// Export writes the records between from and to (To exclusive, zero = open) to w as
// "csv" (a header line, then one row per record; details as JSON) or "json" (an array).
func Export(ctx context.Context, db *sql.DB, from, to time.Time, format string, w io.Writer) error {
	if format != "csv" && format != "json" {
		return fmt.Errorf("audit: export: format must be csv or json, got %q", format)
	}
	recs, err := Records(ctx, db, Query{From: from, To: to})
	if err != nil {
		return err
	}
	if format == "json" {
		if recs == nil {
			recs = []Record{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "time", "actor", "role", "auth_method", "source", "action", "object", "before", "after", "details", "prev", "hash"})
	for _, r := range recs {
		details := ""
		if len(r.Details) > 0 {
			m := map[string]string{}
			for _, k := range slices.Sorted(maps.Keys(r.Details)) {
				m[k] = r.Details[k]
			}
			b, _ := json.Marshal(m)
			details = string(b)
		}
		cw.Write([]string{strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Actor, r.Role, r.AuthMethod,
			r.Source, r.Action, r.Object, r.Before, r.After, details, r.Prev, r.Hash})
	}
	cw.Flush()
	return cw.Error()
}
