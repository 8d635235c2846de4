package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the open database. It is safe for concurrent use; Close it once.
type DB struct {
	*sql.DB
	path string
}

// Open opens (creating if needed) the database file at path, in WAL mode with foreign
// keys on, applies the store's own migrations, and checks the file is a database at
// all. Every transaction begins IMMEDIATE (it takes the write lock at BEGIN, waiting up
// to the busy timeout of 5 s for it), so a transaction that reads and then writes never
// fails with SQLITE_BUSY because another writer committed in between.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "foreign_keys(ON)", "busy_timeout(5000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	sqldb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{DB: sqldb, path: path}
	if err := db.check(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Migrate(ctx, "store", migrations); err != nil {
		sqldb.Close()
		return nil, err
	}
	return db, nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

func (db *DB) check(ctx context.Context) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return describe(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return describe(err)
	}
	if res != "ok" {
		return fmt.Errorf("database is corrupt: %s", res)
	}
	return nil
}

// describe turns SQLite's terse errors about unreadable files into sentences.
func describe(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "file is not a database"), strings.Contains(msg, "malformed"):
		return fmt.Errorf("not a Patchgate database or corrupt (%v); restore it from a backup or move it aside", err)
	case strings.Contains(msg, "readonly"), strings.Contains(msg, "unable to open"):
		return fmt.Errorf("cannot write the database file (%v); check the state directory's owner and permissions", err)
	}
	return err
}

// Tx runs fn in a transaction, committing if fn returns nil.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
