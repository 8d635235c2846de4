// Package storetest gives tests a fresh, empty store.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/appliance/store"
)

// Open opens a new database in the test's temporary directory and closes it when the
// test ends; it fails the test if the database cannot be opened.
func Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
