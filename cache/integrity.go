package cache

// IntegrityEvent is an integrity check that failed: bytes the cache refused from
// upstream, a download given up because the upstream did not deliver, or a stored
// object it found damaged and dropped. The appliance records each in the audit trail.
type IntegrityEvent struct {
	Kind string // one of the IntegrityKind values
	Repo string // may be empty when only the store key is known
	Path string // target path; may be empty likewise
	Key  string // sha256 store key; empty for a refused download
	// Reason is set for IntegrityUpstreamFailed: deadline, stalled, too_slow,
	// short_body, status or error (see cache/README.md).
	Reason string
	Detail string
}

// Kinds of IntegrityEvent.
const (
	// IntegrityUpstreamRejected: an upstream download did not match the verified
	// metadata (length or a hash) and was discarded; nothing was served.
	IntegrityUpstreamRejected = "upstream_rejected"
	// IntegrityUpstreamFailed: a download was given up because the upstream did not
	// deliver the verified bytes: past the download deadline, or too many attempts in a
	// row without new verified progress (stalled, too slow, short bodies, errors).
	// Requests waiting for it were answered 504 or 502; nothing was stored.
	IntegrityUpstreamFailed = "upstream_failed"
	// IntegrityStoredDamaged: a stored object had the wrong size when served and was
	// dropped; it will be fetched again.
	IntegrityStoredDamaged = "stored_damaged"
	// IntegrityScrubMismatch: the scrubber re-hashed a stored object, found it no longer
	// matches, and dropped it.
	IntegrityScrubMismatch = "scrub_mismatch"
)

// integrity reports ev to Options.OnIntegrity, if set.
func (c *Cache) integrity(ev IntegrityEvent) {
	if c.onIntegrity != nil {
		c.onIntegrity(ev)
	}
}
