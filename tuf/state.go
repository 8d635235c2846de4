package tuf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/patchgate/patchgate/atomicfile"
)

// Errors a Mirror's lookups return (wrapped); test with errors.Is.
var (
	// ErrNotFound means verified metadata lists no such target or file.
	ErrNotFound = errors.New("not found")
	// ErrNoMetadata means the mirror has never verified this repository's
	// metadata (the upstream was never reached, or only refused).
	ErrNoMetadata = errors.New("no verified metadata")
	// ErrExpired means the last verified metadata has expired and could
	// not be refreshed; nothing it vouches for is served.
	ErrExpired = errors.New("verified metadata expired")
	// ErrRoleUnavailable means a delegated role needed for the lookup
	// could not be verified.
	ErrRoleUnavailable = errors.New("delegated role unavailable")
)

// persisted is the on-disk form of the served state: the raw top-level
// metadata files, byte for byte, in the order they must be verified. It is a
// consistent set (one timestamp, its snapshot, that snapshot's targets) and
// is written atomically only after all of it verified. Delegated roles are
// not part of it: they are verified lazily, per lookup (see roleCache).
type persisted struct {
	VerifiedAt time.Time       `json:"verified_at"`
	Roots      [][]byte        `json:"roots"` // versions after the pinned root, in order
	Timestamp  []byte          `json:"timestamp"`
	Snapshot   []byte          `json:"snapshot"`
	Roles      []persistedRole `json:"roles"` // "targets" only (older files listed delegated roles too; they are ignored)
	// Missing is no longer written (kept so older files still parse).
	Missing map[string]string `json:"missing,omitempty"`
}

type persistedRole struct {
	Name   string `json:"name"`
	Parent string `json:"parent"`
	Data   []byte `json:"data"`
}

// anchor is the newest top-level metadata that verified, persisted in
// STATE/trusted.json. It may be ahead of the served state (a refresh whose
// timestamp and snapshot verified but whose targets did not advances it) and
// is the floor for rollback checks: no later refresh accepts a root,
// timestamp or snapshot version below it, even with go-tuf's client
// directory lost.
type anchor struct {
	Roots     [][]byte `json:"roots"` // versions after the pinned root, in order
	Timestamp []byte   `json:"timestamp,omitempty"`
	Snapshot  []byte   `json:"snapshot,omitempty"`
}

// versions of an anchor, parsed from its (verified) bytes; 0 when absent.
func (a anchor) versions() (ts, snap int64) {
	if md, err := metadata.Timestamp().FromBytes(a.Timestamp); err == nil {
		ts = md.Signed.Version
	}
	if md, err := metadata.Snapshot().FromBytes(a.Snapshot); err == nil {
		snap = md.Signed.Version
	}
	return ts, snap
}

// state is one verified view of a repository. It is immutable once built,
// but for its lazily verified delegated roles.
type state struct {
	p          persisted
	trusted    *trustedmetadata.TrustedMetadata // root, timestamp, snapshot, top-level targets
	files      map[string][]byte                // served top-level file names -> bytes
	expires    time.Time                        // earliest expiry of root, timestamp, snapshot, targets
	roles      *roleCache
	maxVisits  int
	numTargets int // top-level targets
}

// verifyChain verifies the root chain from the pinned root at refTime.
func verifyChain(pinned []byte, roots [][]byte, refTime time.Time) (*trustedmetadata.TrustedMetadata, [][]byte, error) {
	tm, err := trustedmetadata.New(pinned)
	if err != nil {
		return nil, nil, fmt.Errorf("pinned root: %w", err)
	}
	tm.RefTime = refTime
	var kept [][]byte
	for _, raw := range roots {
		r, err := metadata.Root().FromBytes(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("root chain: %w", err)
		}
		if r.Signed.Version <= tm.Root.Signed.Version {
			continue // older than the pinned root: not part of the chain
		}
		if _, err := tm.UpdateRoot(raw); err != nil {
			return nil, nil, fmt.Errorf("root version %d: %w", r.Signed.Version, err)
		}
		kept = append(kept, raw)
	}
	return tm, kept, nil
}

// verifyAll verifies the top-level files of p, in order, against the pinned
// root at refTime, and returns the trusted set with p's root chain trimmed to
// the versions after the pinned root. With a floor, it also refuses any
// version below the floor's (the client workflow's rollback checks, run with
// the floor's timestamp and snapshot as the trusted ones before p's).
func verifyAll(pinned []byte, p persisted, refTime time.Time, floor *anchor) (*trustedmetadata.TrustedMetadata, persisted, error) {
	tm, roots, err := verifyChain(pinned, p.Roots, refTime)
	if err != nil {
		return nil, p, err
	}
	p.Roots = roots
	if floor != nil {
		if err := checkRootFloor(tm, *floor); err != nil {
			return nil, p, err
		}
	}
	ts := p.Timestamp
	if floor != nil && len(floor.Timestamp) > 0 {
		// Loaded for its rollback checks only; one signed by keys the new root
		// no longer trusts is dropped (the specification's fast-forward
		// recovery), an expired one still counts.
		_, _ = tm.UpdateTimestamp(floor.Timestamp)
		if tm.Timestamp != nil && bytes.Equal(floor.Timestamp, ts) {
			ts = nil // the same file: already loaded
		}
	}
	if ts != nil {
		if _, err := tm.UpdateTimestamp(ts); err != nil {
			return nil, p, fmt.Errorf("timestamp: %w", err)
		}
	} else if err := expiredErr(tm.Timestamp.Signed.IsExpired(refTime), "timestamp"); err != nil {
		return nil, p, err
	}
	if floor != nil && len(floor.Snapshot) > 0 {
		// Likewise: go-tuf keeps an expired or superseded snapshot loaded
		// (reporting it), for the rollback checks of the next one.
		_, _ = tm.UpdateSnapshot(floor.Snapshot, true)
	}
	if _, err := tm.UpdateSnapshot(p.Snapshot, false); err != nil {
		return nil, p, fmt.Errorf("snapshot: %w", err)
	}
	if len(p.Roles) == 0 || p.Roles[0].Name != metadata.TARGETS || p.Roles[0].Parent != metadata.ROOT {
		return nil, p, fmt.Errorf("targets: missing")
	}
	p.Roles = p.Roles[:1]
	if _, err := tm.UpdateTargets(p.Roles[0].Data); err != nil {
		return nil, p, fmt.Errorf("role %s: %w", metadata.TARGETS, err)
	}
	return tm, p, nil
}

// checkRootFloor refuses a root chain that ends below the floor's.
func checkRootFloor(tm *trustedmetadata.TrustedMetadata, floor anchor) error {
	if len(floor.Roots) == 0 {
		return nil
	}
	r, err := metadata.Root().FromBytes(floor.Roots[len(floor.Roots)-1])
	if err != nil {
		return nil // an unreadable floor constrains nothing; it was verified when written
	}
	if tm.Root.Signed.Version < r.Signed.Version {
		return fmt.Errorf("root version %d is below the trusted version %d", tm.Root.Signed.Version, r.Signed.Version)
	}
	return nil
}

func expiredErr(expired bool, role string) error {
	if expired {
		return &metadata.ErrExpiredMetadata{Msg: role + ".json is expired"}
	}
	return nil
}

// verifyAnchor verifies an anchor from the pinned root at refTime (expiry
// aside: an anchor only ever sets a floor) and trims its root chain. A
// timestamp or snapshot that does not verify is dropped.
func verifyAnchor(pinned []byte, a anchor, refTime time.Time) (anchor, error) {
	tm, roots, err := verifyChain(pinned, a.Roots, refTime)
	if err != nil {
		return anchor{}, err
	}
	out := anchor{Roots: roots}
	root := tm.Root
	if md, err := metadata.Timestamp().FromBytes(a.Timestamp); err == nil && md.Signed.Type == metadata.TIMESTAMP &&
		root.VerifyDelegate(metadata.TIMESTAMP, md) == nil {
		out.Timestamp = a.Timestamp
	}
	if md, err := metadata.Snapshot().FromBytes(a.Snapshot); err == nil && md.Signed.Type == metadata.SNAPSHOT &&
		root.VerifyDelegate(metadata.SNAPSHOT, md) == nil {
		out.Snapshot = a.Snapshot
	}
	return out, nil
}

// newState indexes a verified p (tm is verifyAll's result or its equal).
func newState(pinned []byte, p persisted, tm *trustedmetadata.TrustedMetadata, maxVisits int) *state {
	s := &state{p: p, trusted: tm, files: map[string][]byte{}, roles: newRoleCache(), maxVisits: maxVisits}
	if pinnedRoot, err := metadata.Root().FromBytes(pinned); err == nil {
		s.files[MetadataName{Role: metadata.ROOT, Version: pinnedRoot.Signed.Version}.String()] = pinned
	}
	latest := pinned
	for _, raw := range p.Roots {
		if r, err := metadata.Root().FromBytes(raw); err == nil {
			s.files[MetadataName{Role: metadata.ROOT, Version: r.Signed.Version}.String()] = raw
		}
		latest = raw
	}
	s.files["root.json"] = latest
	s.files["timestamp.json"] = p.Timestamp
	s.addVersioned(metadata.SNAPSHOT, tm.Snapshot.Signed.Version, p.Snapshot)
	s.addVersioned(metadata.TARGETS, tm.Targets[metadata.TARGETS].Signed.Version, p.Roles[0].Data)
	s.numTargets = len(tm.Targets[metadata.TARGETS].Signed.Targets)
	s.expires = earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, tm.Targets[metadata.TARGETS].Signed.Expires)
	return s
}

// missingCount returns how many delegated roles are unavailable now.
func (s *state) missingCount() int {
	s.roles.mu.Lock()
	defer s.roles.mu.Unlock()
	return len(s.roles.missing)
}

// missing returns the delegated roles unavailable now, and why.
func (s *state) missing() map[string]string {
	s.roles.mu.Lock()
	defer s.roles.mu.Unlock()
	return maps.Clone(s.roles.missing)
}

func (s *state) addVersioned(role string, version int64, data []byte) {
	s.files[MetadataName{Role: role}.String()] = data
	s.files[MetadataName{Role: role, Version: version}.String()] = data
}

func earliest(ts ...time.Time) time.Time {
	min := ts[0]
	for _, t := range ts[1:] {
		if t.Before(min) {
			min = t
		}
	}
	return min
}

func targetInfo(path, role string, tf *metadata.TargetFiles) TargetInfo {
	t := TargetInfo{Path: path, Length: tf.Length, Role: role, Hashes: make(map[string]HexBytes, len(tf.Hashes))}
	for alg, h := range tf.Hashes {
		t.Hashes[alg] = HexBytes(h)
	}
	if tf.Custom != nil {
		t.Custom = append(json.RawMessage(nil), *tf.Custom...)
	}
	return t
}

// readJSON reads a state file (verified.json, trusted.json); a missing file
// is (nil, nil).
func readJSON[T any](path string) (*T, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &v, nil
}

// writeJSON writes v to path crash-safely (atomicfile: temp file, fsync,
// rename, fsync of the directory).
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// versionString formats a metadata version for messages.
func versionString(v int64) string { return strconv.FormatInt(v, 10) }
