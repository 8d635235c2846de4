// Package audit is Patchgate's tamper-evident audit trail.
//
// Every state change of the appliance (logins, user and role changes, approvals, rollout
// transitions, forced stages, exceptions, new devices, cache integrity failures, blocked
// DNS bursts, config reloads) becomes a Record: a sequence number, the time, who did it
// (actor, role, auth method, source address), what (action, object, digests of the
// object before and after, details) and two hashes: the previous record's and its own,
// so that the records form a hash chain.
//
// Each record is written twice, append-only: as one JSON line in a file (synced before
// the write returns) and as a row in the database (where triggers refuse UPDATE, and
// DELETE of anything younger than six years). Periodic checkpoints sign (ed25519) the
// number of records and the RFC 6962 Merkle root of their hashes; they can be copied off
// the box and checked later, so that a truncation of both copies is still detected.
//
// Verify checks the whole chain, both copies against each other and every checkpoint,
// and names the first bad record. Records hold names of people and devices, never
// patient data: Entry.Check refuses details that look like ePHI.
package audit
