// Package supply brings vendor updates in: the sources section's feeds (a URL with a
// pinned sha256 or a SHA256SUMS next to it, a detached OpenPGP signature by a pinned key,
// a Debian/Ubuntu archive, a watched import directory), each checked on its interval and
// each download verified by the vendor's own means before it is staged as a candidate
// with its provenance. Nothing unverified is ever staged.
package supply
