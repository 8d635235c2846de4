package cache

// IntegrityEvent is an integrity check that failed: bytes the cache refused from
// upstream, or a stored object it found damaged and dropped. The appliance records each
// in the audit trail.
type IntegrityEvent struct {
	Kind   string // one of the IntegrityKind values
	Repo   string // may be empty when only the store key is known
	Path   string // target path; may be empty likewise
	Key    string // sha256 store key; empty for a refused download
	Detail string
}

// Kinds of IntegrityEvent.
const (
	// IntegrityUpstreamRejected: an upstream download did not match the verified
	// metadata (length or a hash) and was discarded; nothing was served.
	IntegrityUpstreamRejected = "upstream_rejected"
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
