// Package tuftest builds real TUF repositories for tests: keys, metadata
// signed with go-tuf's metadata API, and target files, served by an
// httptest server that counts every GET and can be told to misbehave
// (tampered bytes, stale or unsigned metadata, stalls) for attack tests.
package tuftest
