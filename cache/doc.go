// Package cache is Patchgate's update cache: a content-addressed store of
// target files keyed by sha256, filled from upstream TUF repositories
// (package tuf) with coalesced, resumable, streaming-verified downloads, and
// served to endpoints with http.ServeContent (ranges, conditional requests,
// sendfile) under a byte quota with LRU eviction that spares pinned targets,
// and a scrubber that re-hashes what is stored.
//
// No byte reaches an endpoint unless the repository's verified metadata
// vouches for it: objects enter the store only after their exact length and
// every listed hash matched.
package cache
