package store

import (
	"context"
	"database/sql"
)

// Row is what a scan function reads one row from: *sql.Row or *sql.Rows. It is an
// alias so that a func(interface{ Scan(...any) error }) is a scan function as written.
type Row = interface{ Scan(dest ...any) error }

// Querier runs a query: *DB, *sql.DB, *sql.Tx or *sql.Conn.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Query runs query with args on q and returns what scan makes of each row, in the
// order of the result; the first error (of the query, a scan or the iteration) ends it.
// The caller adds what it was doing to the error.
func Query[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
