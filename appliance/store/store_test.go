package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "patchgate.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

var widgetMigs = []Migration{
	{1, "create", `CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`},
	{2, "colour", `ALTER TABLE widgets ADD COLUMN colour TEXT NOT NULL DEFAULT 'blue'`},
}

func TestOpenIsWAL(t *testing.T) {
	db, path := openTemp(t)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	if err := db.Migrate(ctx, "widgets", widgetMigs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO widgets(name) VALUES('a')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 { // the second run must be a no-op
		if err := db.Migrate(ctx, "widgets", widgetMigs); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	var name, colour string
	if err := db.QueryRow(`SELECT name, colour FROM widgets`).Scan(&name, &colour); err != nil {
		t.Fatal(err)
	}
	if name != "a" || colour != "blue" {
		t.Errorf("row after migration = %q %q, want a blue", name, colour)
	}
	if v, _ := db.Version(ctx, "widgets"); v != 2 {
		t.Errorf("Version(widgets) = %d, want 2", v)
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	if err := db.Migrate(ctx, "widgets", widgetMigs); err != nil {
		t.Fatal(err)
	}
	err := db.Migrate(ctx, "widgets", widgetMigs[:1])
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("Migrate with an older binary = %v, want ErrTooNew", err)
	}
	if !strings.Contains(err.Error(), "schema version 2, this binary knows up to 1") {
		t.Errorf("message %q does not say which versions", err)
	}
}

func TestFailedMigrationLeavesVersion(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	bad := append([]Migration{}, widgetMigs[0], Migration{2, "broken", `ALTER TABLE nope ADD COLUMN x`})
	if err := db.Migrate(ctx, "widgets", bad); err == nil {
		t.Fatal("Migrate with a broken migration succeeded")
	}
	if v, _ := db.Version(ctx, "widgets"); v != 1 {
		t.Errorf("Version after failed migration 2 = %d, want 1", v)
	}
}

func TestMigrationGapsRejected(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Migrate(context.Background(), "widgets", []Migration{{1, "a", "SELECT 1"}, {3, "c", "SELECT 1"}})
	if err == nil || !strings.Contains(err.Error(), "want 2") {
		t.Fatalf("Migrate with a gap = %v, want an error naming the gap", err)
	}
}

func TestOpenCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchgate.db")
	junk := []byte(strings.Repeat("this is not sqlite ", 400))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open(corrupt) = %v, want an error naming the file and saying corrupt", err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(junk) {
		t.Error("Open changed the corrupt file")
	}
}

func TestMigrationsFS(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_colour.sql": {Data: []byte(widgetMigs[1].SQL)},
		"m/0001_create.sql": {Data: []byte(widgetMigs[0].SQL)},
	}
	migs, err := MigrationsFS(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].Name != "create" || migs[1].Version != 2 {
		t.Fatalf("MigrationsFS = %+v", migs)
	}
	fsys["m/bad name.sql"] = &fstest.MapFile{}
	if _, err := MigrationsFS(fsys, "m"); err == nil {
		t.Error("MigrationsFS accepted a badly named file")
	}
}

// MigrateFS applies the embedded migrations and names the component when their files
// are badly named.
func TestMigrateFS(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	fsys := fstest.MapFS{
		"m/0001_create.sql": {Data: []byte(widgetMigs[0].SQL)},
		"m/0002_colour.sql": {Data: []byte(widgetMigs[1].SQL)},
	}
	if err := db.MigrateFS(ctx, "widgets", fsys, "m"); err != nil {
		t.Fatalf("MigrateFS: %v", err)
	}
	if v, err := db.Version(ctx, "widgets"); err != nil || v != 2 {
		t.Fatalf("Version = %d, %v; want 2", v, err)
	}
	fsys["m/bad name.sql"] = &fstest.MapFile{}
	if err := db.MigrateFS(ctx, "widgets", fsys, "m"); err == nil || !strings.Contains(err.Error(), "migrate widgets") {
		t.Errorf("MigrateFS with a badly named file = %v, want an error naming widgets", err)
	}
}

// Writers in several goroutines on one database file (agent check-ins arriving
// together) all succeed: each transaction reads then writes, which in a deferred
// transaction fails with SQLITE_BUSY when another writer got there first (issue 14).
func TestConcurrentWritersNeverBusy(t *testing.T) {
	ctx := context.Background()
	db, path := openTemp(t)
	if _, err := db.Exec(`CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
		INSERT INTO counter(id, n) VALUES(1, 0)`); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, path) // a second pool on the same file
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	const writers, each = 8, 25
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for i := range writers {
		d := db
		if i%2 == 1 {
			d = other
		}
		wg.Go(func() {
			for range each {
				errs <- d.Tx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT n FROM counter WHERE id = 1`).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ? WHERE id = 1`, n+1)
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed == 0 {
				t.Errorf("Tx: %v", err)
			}
			failed++
		}
	}
	var n int
	if err := db.QueryRow(`SELECT n FROM counter WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if failed != 0 || n != writers*each {
		t.Errorf("%d of %d transactions failed, counter = %d; want none failed and %d", failed, writers*each, n, writers*each)
	}
}
