// Package backup makes and restores the appliance's encrypted backups: a consistent
// online snapshot of the database (VACUUM INTO), the config file, and everything under
// the state directory (TUF keys and metadata, the audit trail and its checkpoints, the
// site CA, TLS material) except the cache's objects, which refill from upstream. One
// tar archive with a manifest (path, size and SHA-256 of every member, table digests,
// schema versions), gzip-compressed and encrypted to age recipients, goes to a local
// directory and/or an S3-compatible bucket. Restore verifies everything — decryption,
// manifest hashes, schema versions, the audit chain — in a staging directory before it
// moves anything into place, and records itself in the audit trail.
package backup
