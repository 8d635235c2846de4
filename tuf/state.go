package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
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

// persisted is the on-disk form of a verified state: every raw metadata file,
// byte for byte, in the order they must be verified. It is written atomically
// only after the whole state verified.
type persisted struct {
	VerifiedAt time.Time       `json:"verified_at"`
	Roots      [][]byte        `json:"roots"` // versions after the pinned root, in order
	Timestamp  []byte          `json:"timestamp"`
	Snapshot   []byte          `json:"snapshot"`
	Roles      []persistedRole `json:"roles"` // "targets" first, parents before children
	// Missing lists delegated roles that did not verify, and why.
	Missing map[string]string `json:"missing,omitempty"`
}

type persistedRole struct {
	Name   string `json:"name"`
	Parent string `json:"parent"`
	Data   []byte `json:"data"`
}

// state is one verified view of a repository. It is immutable once built.
type state struct {
	p          persisted
	trusted    *trustedmetadata.TrustedMetadata
	files      map[string][]byte // served metadata file names -> bytes
	expires    time.Time         // earliest expiry of root, timestamp, snapshot, targets
	missing    map[string]string // delegated roles that failed to verify -> why
	maxVisits  int
	numTargets int
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

// verifyAll verifies every file of p, in order, against the pinned root at
// refTime, and returns the trusted set with p's root chain trimmed to the
// versions after the pinned root.
func verifyAll(pinned []byte, p persisted, refTime time.Time) (*trustedmetadata.TrustedMetadata, persisted, error) {
	tm, roots, err := verifyChain(pinned, p.Roots, refTime)
	if err != nil {
		return nil, p, err
	}
	p.Roots = roots
	if _, err := tm.UpdateTimestamp(p.Timestamp); err != nil {
		return nil, p, fmt.Errorf("timestamp: %w", err)
	}
	if _, err := tm.UpdateSnapshot(p.Snapshot, false); err != nil {
		return nil, p, fmt.Errorf("snapshot: %w", err)
	}
	if len(p.Roles) == 0 || p.Roles[0].Name != metadata.TARGETS || p.Roles[0].Parent != metadata.ROOT {
		return nil, p, fmt.Errorf("targets: missing")
	}
	for _, r := range p.Roles {
		if _, err := tm.UpdateDelegatedTargets(r.Data, r.Name, r.Parent); err != nil {
			return nil, p, fmt.Errorf("role %s: %w", r.Name, err)
		}
	}
	return tm, p, nil
}

// newState indexes a verified p (tm is verifyAll's result or its equal).
func newState(pinned []byte, p persisted, tm *trustedmetadata.TrustedMetadata, maxVisits int) *state {
	s := &state{p: p, trusted: tm, files: map[string][]byte{}, missing: p.Missing, maxVisits: maxVisits}
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
	for _, r := range p.Roles {
		s.addVersioned(r.Name, tm.Targets[r.Name].Signed.Version, r.Data)
		s.numTargets += len(tm.Targets[r.Name].Signed.Targets)
	}
	s.expires = earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, tm.Targets[metadata.TARGETS].Signed.Expires)
	return s
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

// lookup finds path by go-tuf's pre-order depth-first walk of delegations
// (the same order go-tuf's updater uses), refusing expired or unavailable
// roles on the way.
func (s *state) lookup(path string, now time.Time) (TargetInfo, error) {
	if now.After(s.expires) {
		return TargetInfo{}, fmt.Errorf("%w at %s", ErrExpired, s.expires.UTC().Format(time.RFC3339))
	}
	type visit struct{ role string }
	stack := []visit{{metadata.TARGETS}}
	seen := map[string]bool{}
	for len(stack) > 0 && len(seen) <= s.maxVisits {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v.role] {
			continue
		}
		md, ok := s.trusted.Targets[v.role]
		if !ok {
			why := s.missing[v.role]
			if why == "" {
				why = "not listed in snapshot"
			}
			return TargetInfo{}, fmt.Errorf("%w: %s: %s", ErrRoleUnavailable, v.role, why)
		}
		if md.Signed.IsExpired(now) {
			return TargetInfo{}, fmt.Errorf("%w: role %s at %s", ErrExpired, v.role, md.Signed.Expires.UTC().Format(time.RFC3339))
		}
		if tf, ok := md.Signed.Targets[path]; ok {
			return targetInfo(path, v.role, tf), nil
		}
		seen[v.role] = true
		if md.Signed.Delegations == nil {
			continue
		}
		var children []visit
		for _, r := range md.Signed.Delegations.GetRolesForTarget(path) {
			children = append(children, visit{r.Name})
			if r.Terminating {
				stack = nil
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return TargetInfo{}, fmt.Errorf("target %s: %w", path, ErrNotFound)
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

// readPersisted reads a verified state file; a missing file is (nil, nil).
func readPersisted(path string) (*persisted, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// writePersisted writes p to path atomically: temp file, fsync, rename,
// fsync of the directory.
func writePersisted(path string, p persisted) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// versionString formats a metadata version for messages.
func versionString(v int64) string { return strconv.FormatInt(v, 10) }
