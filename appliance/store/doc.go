// Package store is the appliance's embedded database: one SQLite file in the state
// directory, opened through modernc.org/sqlite (pure Go, no cgo) in WAL mode. Every
// transaction begins IMMEDIATE and waits up to 5 s for the write lock, so concurrent
// writers (agent check-ins) queue instead of failing with SQLITE_BUSY.
//
// Each component owns its tables and brings its own numbered migrations (Migrate with a
// component name); the store records, per component, the highest migration applied, applies
// the missing ones in order inside one transaction each, and refuses to start on a database
// whose component version is newer than the binary knows, so an older binary never writes
// to a schema it does not understand.
//
// Query runs a query and scans its rows into a slice with the caller's scan function,
// the loop every component's list methods would otherwise write again.
package store
