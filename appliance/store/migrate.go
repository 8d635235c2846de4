package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

// Migration is one numbered schema change of a component. Versions start at 1 and have
// no gaps.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ErrTooNew is returned when the database was migrated by a newer Patchgate.
var ErrTooNew = errors.New("database is newer than this binary")

var migrations = []Migration{{
	Version: 1,
	Name:    "meta",
	SQL:     `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
}}

const versionsTable = `CREATE TABLE IF NOT EXISTS schema_versions (
	component  TEXT PRIMARY KEY,
	version    INTEGER NOT NULL,
	applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)`

// Migrate brings component's tables to the newest of migs, applying each missing
// migration in its own transaction. It refuses (ErrTooNew) a database whose component
// version is higher than the last of migs.
func (db *DB) Migrate(ctx context.Context, component string, migs []Migration) error {
	for i, m := range migs {
		if m.Version != i+1 {
			return fmt.Errorf("store: migrate %s: migration %q has version %d, want %d", component, m.Name, m.Version, i+1)
		}
	}
	if _, err := db.ExecContext(ctx, versionsTable); err != nil {
		return fmt.Errorf("store: migrate %s: %w", component, describe(err))
	}
	have, err := db.Version(ctx, component)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", component, err)
	}
	if have > len(migs) {
		return fmt.Errorf("store: migrate %s: %w (schema version %d, this binary knows up to %d); run the newer Patchgate or restore a backup", component, ErrTooNew, have, len(migs))
	}
	for _, m := range migs[have:] {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_versions(component, version) VALUES(?, ?)
				ON CONFLICT(component) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at`, component, m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate %s to %d (%s): %w", component, m.Version, m.Name, describe(err))
		}
	}
	return nil
}

// MigrateFS is Migrate with the migrations read by MigrationsFS from dir of fsys: what a
// component with its schema in embedded SQL files calls.
func (db *DB) MigrateFS(ctx context.Context, component string, fsys fs.FS, dir string) error {
	migs, err := MigrationsFS(fsys, dir)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", component, err)
	}
	return db.Migrate(ctx, component, migs)
}

// Version returns the schema version of component, 0 if it has none yet.
func (db *DB) Version(ctx context.Context, component string) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

var migrationFile = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// MigrationsFS reads migrations from files named NNNN_name.sql in dir of fsys (usually an
// embed.FS), so a component keeps its schema as plain SQL beside its code.
func MigrationsFS(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var migs []Migration
	for _, e := range entries {
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("store: migrations: %s: want a name like 0001_create_assets.sql", path.Join(dir, e.Name()))
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		v, _ := strconv.Atoi(m[1])
		migs = append(migs, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(migs, func(a, b Migration) int { return a.Version - b.Version })
	return migs, nil
}
