// Package tuf is Patchgate's use of The Update Framework (go-tuf/v2) for
// metadata only.
//
// A [Mirror] keeps the verified metadata of one upstream repository: it
// refreshes it with a fresh go-tuf updater per cycle over its own HTTP client,
// persists the verified bytes so a restart without network serves the last
// verified state until it expires, and answers, for a target path, the
// expected length and hashes ([TargetInfo]), resolving delegations lazily in
// the specification's order. Target bytes are
// never read whole into memory: callers stream them through a [Verifier].
//
// A [Publisher] maintains a TUF repository on disk for sites that sign their
// own vetted patches (patchgate tuf init|add|remove|publish|rotate).
package tuf
