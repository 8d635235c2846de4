package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Tables lists the database's tables (not SQLite's own), sorted by name.
func Tables(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("tables: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// TableRows returns every row of table, each encoded as one string of its typed column
// values, ordered by all columns, so two databases holding the same rows give equal
// slices whatever their physical order.
func TableRows(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	var out []string
	err := eachRow(ctx, db, table, func(r string) { out = append(out, r) })
	return out, err
}

// TableDigests counts and digests every table of db (see TableRows).
func TableDigests(ctx context.Context, db *sql.DB) ([]Table, error) {
	names, err := Tables(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []Table
	for _, n := range names {
		h := sha256.New()
		t := Table{Name: n}
		err := eachRow(ctx, db, n, func(r string) {
			t.Rows++
			h.Write([]byte(r))
			h.Write([]byte{'\n'})
		})
		if err != nil {
			return nil, err
		}
		t.SHA256 = hex.EncodeToString(h.Sum(nil))
		out = append(out, t)
	}
	return out, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func eachRow(ctx context.Context, db *sql.DB, table string, fn func(string)) error {
	cols, err := db.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table)+` LIMIT 0`)
	if err != nil {
		return fmt.Errorf("table %s: %w", table, err)
	}
	names, err := cols.Columns()
	cols.Close()
	if err != nil {
		return fmt.Errorf("table %s: %w", table, err)
	}
	order := make([]string, len(names))
	for i := range names {
		order[i] = strconv.Itoa(i + 1)
	}
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+quoteIdent(table)+` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return fmt.Errorf("table %s: %w", table, err)
	}
	defer rows.Close()
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var b strings.Builder
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
		b.Reset()
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("null")
			case []byte:
				b.WriteString("x'" + hex.EncodeToString(v) + "'")
			case string:
				b.WriteString(strconv.Quote(v))
			default:
				fmt.Fprintf(&b, "%T:%v", v, v)
			}
		}
		fn(b.String())
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s: %w", table, err)
	}
	return nil
}
