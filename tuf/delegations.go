package tuf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/atomicfile"
)

// rolesDir holds the raw bytes of delegated roles fetched lazily, one file
// per role version. The files are an untrusted cache: every use checks them
// against the served snapshot and the delegator on the lookup's path.
const rolesDir = "roles"

// maxLookupRoles is the specification's default bound on the delegated roles
// one target lookup visits (python-tuf's and go-tuf's MaxDelegations).
const maxLookupRoles = 32

// roleCache holds the delegated roles of one served state, verified lazily.
// A role is verified against the delegator that named it on the lookup's path
// and cached under that path: a role verified under one delegator is never
// used under another that does not trust its keys. It is safe for concurrent
// use.
type roleCache struct {
	fetchMu sync.Mutex // one upstream fetch of role bytes at a time

	mu       sync.Mutex
	raw      map[string][]byte                                   // role name -> bytes matching the snapshot (not yet trusted)
	verified map[string]*metadata.Metadata[metadata.TargetsType] // path key -> role verified on that path
	failed   map[string]string                                   // path key -> why it did not verify
	missing  map[string]string                                   // role name -> why it is unavailable (health)
}

func newRoleCache() *roleCache {
	return &roleCache{raw: map[string][]byte{}, verified: map[string]*metadata.Metadata[metadata.TargetsType]{},
		failed: map[string]string{}, missing: map[string]string{}}
}

// pathKey names a role reached through a delegator: the delegator's own key,
// then the role's name.
func pathKey(parentKey, role string) string { return parentKey + "\x00" + role }

// delegatedPath reports whether a delegation covers path: glob patterns, or
// path hash prefixes (lowercase hex of the path's sha256, as the
// specification says).
func delegatedPath(r metadata.DelegatedRole, path string) bool {
	if len(r.Paths) > 0 {
		ok, err := r.IsDelegatedPath(path)
		return err == nil && ok
	}
	sum := sha256.Sum256([]byte(path))
	digest := hex.EncodeToString(sum[:])
	for _, p := range r.PathHashPrefixes {
		if strings.HasPrefix(digest, p) {
			return true
		}
	}
	return false
}

// delegation is one child role a delegator names for a lookup.
type delegation struct {
	name        string
	terminating bool
}

// childrenFor returns the roles md delegates path to, in order; with all,
// every delegated role (for metadata searches).
func childrenFor(md *metadata.Metadata[metadata.TargetsType], path string, all bool) []delegation {
	d := md.Signed.Delegations
	if d == nil {
		return nil
	}
	var out []delegation
	switch {
	case d.Roles != nil:
		for _, r := range d.Roles {
			if all || delegatedPath(r, path) {
				out = append(out, delegation{r.Name, r.Terminating})
			}
		}
	case d.SuccinctRoles != nil:
		if all {
			for _, n := range d.SuccinctRoles.GetRoles() {
				out = append(out, delegation{name: n})
			}
		} else {
			for _, r := range d.SuccinctRoles.GetRolesForTarget(path) {
				out = append(out, delegation{r.Name, r.Terminating})
			}
		}
	}
	return out
}

// visit is a role to look at in a walk: its name, its delegator's path key
// and the delegator itself (nil for the top-level targets role).
type visit struct {
	role      string
	parentKey string
	parent    *metadata.Metadata[metadata.TargetsType]
}

// walk runs the specification's pre-order depth-first search of the
// delegations from the top-level targets role, verifying each role against
// its delegator on the path. found is called on each role reached; it stops
// the walk by returning true. For a target lookup (all false) only
// delegations whose paths cover path are followed and a terminating one ends
// the search after its subtree; at most limit roles are visited.
func (m *Mirror) walk(ctx context.Context, s *state, path string, all bool, limit int,
	found func(name, key string, md *metadata.Metadata[metadata.TargetsType]) bool) error {
	now := m.clock.Now()
	if now.After(s.expires) {
		return fmt.Errorf("%w at %s", ErrExpired, s.expires.UTC().Format(time.RFC3339))
	}
	stack := []visit{{role: metadata.TARGETS}}
	// (role, delegator), as the specification counts visits: a struct key, so a lookup
	// builds no string.
	type edgeKey struct{ role, delegator string }
	seen := map[edgeKey]bool{}
	for visits := 0; len(stack) > 0 && visits < limit; {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		key := metadata.TARGETS
		if v.parent != nil {
			key = pathKey(v.parentKey, v.role)
		}
		edge := edgeKey{v.role, lastRole(v.parentKey)}
		if seen[edge] {
			continue
		}
		visits++
		md, err := m.delegated(ctx, s, v, key)
		if err != nil {
			return err
		}
		if md.Signed.IsExpired(now) {
			return fmt.Errorf("%w: role %s at %s", ErrExpired, v.role, md.Signed.Expires.UTC().Format(time.RFC3339))
		}
		if found(v.role, key, md) {
			return nil
		}
		seen[edge] = true
		var children []visit
		for _, c := range childrenFor(md, path, all) {
			children = append(children, visit{role: c.name, parentKey: key, parent: md})
			if c.terminating {
				stack = nil
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil
}

// lastRole returns the role name a path key ends with ("" for none).
func lastRole(key string) string {
	if i := strings.LastIndexByte(key, 0); i >= 0 {
		return key[i+1:]
	}
	return key
}

// lookup finds path by the pre-order depth-first walk, loading the delegated
// roles it needs on the way.
func (m *Mirror) lookup(ctx context.Context, s *state, path string) (TargetInfo, error) {
	var out TargetInfo
	ok := false
	err := m.walk(ctx, s, path, false, s.maxVisits, func(name, _ string, md *metadata.Metadata[metadata.TargetsType]) bool {
		if tf, has := md.Signed.Targets[path]; has {
			out, ok = targetInfo(path, name, tf), true
		}
		return ok
	})
	switch {
	case err != nil:
		return TargetInfo{}, err
	case !ok:
		return TargetInfo{}, fmt.Errorf("target %s: %w", path, ErrNotFound)
	}
	return out, nil
}

// delegated returns the role of v verified against v's delegator (the
// top-level targets role as verified in s), fetching its bytes if needed.
func (m *Mirror) delegated(ctx context.Context, s *state, v visit, key string) (*metadata.Metadata[metadata.TargetsType], error) {
	if v.parent == nil {
		return s.trusted.Targets[metadata.TARGETS], nil
	}
	rc := s.roles
	rc.mu.Lock()
	md, ok := rc.verified[key]
	why, failed := rc.failed[key]
	rc.mu.Unlock()
	if ok {
		return md, nil
	}
	if failed {
		return nil, fmt.Errorf("%w: %s: %s", ErrRoleUnavailable, v.role, why)
	}
	meta, ok := s.trusted.Snapshot.Signed.Meta[v.role+".json"]
	if !ok {
		return nil, m.roleFailed(s, key, v.role, "not listed in snapshot")
	}
	data, err := m.roleBytes(ctx, s, v.role, meta)
	if err != nil {
		// A transport failure: not remembered, the next lookup tries again.
		rc.mu.Lock()
		rc.missing[v.role] = err.Error()
		rc.mu.Unlock()
		m.met.rolesMissing.Set(float64(s.missingCount()))
		return nil, fmt.Errorf("%w: %s: %w", ErrRoleUnavailable, v.role, err)
	}
	md, err = verifyDelegated(v.parent, v.role, data, meta)
	if err != nil {
		return nil, m.roleFailed(s, key, v.role, err.Error())
	}
	rc.mu.Lock()
	_, had := rc.verified[key]
	rc.verified[key] = md
	delete(rc.missing, v.role)
	rc.mu.Unlock()
	if !had {
		m.met.targets.Add(float64(len(md.Signed.Targets)))
	}
	m.met.rolesMissing.Set(float64(s.missingCount()))
	return md, nil
}

// roleFailed records that the role at key did not verify (deterministic for
// the served snapshot, so it is not tried again) and returns the error.
func (m *Mirror) roleFailed(s *state, key, role, why string) error {
	s.roles.mu.Lock()
	s.roles.failed[key] = why
	s.roles.missing[role] = why
	s.roles.mu.Unlock()
	m.met.rolesMissing.Set(float64(s.missingCount()))
	m.log.Warn("delegated role unavailable", "role", role, "err", why)
	return fmt.Errorf("%w: %s: %s", ErrRoleUnavailable, role, why)
}

// verifyDelegated checks a delegated role's bytes as the client workflow
// does (5.6): length and hashes listed in the snapshot, type, the
// delegator's keys and threshold for this role name, and the version the
// snapshot lists. Expiry is checked by the caller at lookup time.
func verifyDelegated(delegator *metadata.Metadata[metadata.TargetsType], name string, data []byte, meta *metadata.MetaFiles) (*metadata.Metadata[metadata.TargetsType], error) {
	if err := meta.VerifyLengthHashes(data); err != nil {
		return nil, err
	}
	md, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, err
	}
	if md.Signed.Type != metadata.TARGETS {
		return nil, fmt.Errorf("type %q, want %q", md.Signed.Type, metadata.TARGETS)
	}
	if err := delegator.VerifyDelegate(name, md); err != nil {
		return nil, err
	}
	if md.Signed.Version != meta.Version {
		return nil, fmt.Errorf("version %d, the snapshot lists %d", md.Signed.Version, meta.Version)
	}
	return md, nil
}

// roleBytes returns the bytes of a delegated role at the version the served
// snapshot lists: from memory, from the roles directory, or downloaded (and
// then kept there). They are not trusted yet: verifyDelegated checks them.
func (m *Mirror) roleBytes(ctx context.Context, s *state, name string, meta *metadata.MetaFiles) ([]byte, error) {
	rc := s.roles
	rc.mu.Lock()
	data, ok := rc.raw[name]
	rc.mu.Unlock()
	if ok {
		return data, nil
	}
	rc.fetchMu.Lock()
	defer rc.fetchMu.Unlock()
	rc.mu.Lock()
	data, ok = rc.raw[name]
	rc.mu.Unlock()
	if ok {
		return data, nil
	}
	file := filepath.Join(m.cfg.StateDir, rolesDir, roleFileName(name, meta.Version))
	if data, err := os.ReadFile(file); err == nil && rawMatches(data, meta) {
		rc.mu.Lock()
		rc.raw[name] = data
		rc.mu.Unlock()
		return data, nil
	}
	data, err := m.downloadRole(ctx, name, meta, s.trusted.Root.Signed.ConsistentSnapshot)
	if err != nil {
		return nil, err
	}
	if rawMatches(data, meta) {
		err := os.MkdirAll(filepath.Dir(file), 0o700)
		if err == nil {
			err = atomicfile.Write(file, data, 0o600)
		}
		if err != nil {
			m.log.Warn("keep delegated role", "role", name, "err", err)
		}
	}
	rc.mu.Lock()
	rc.raw[name] = data
	rc.mu.Unlock()
	return data, nil
}

// rawMatches reports whether data is plausibly the role version meta lists
// (a cheap check before keeping it; verifyDelegated is the real one).
func rawMatches(data []byte, meta *metadata.MetaFiles) bool {
	if meta.VerifyLengthHashes(data) != nil {
		return false
	}
	md, err := metadata.Targets().FromBytes(data)
	return err == nil && md.Signed.Version == meta.Version
}

// roleFileName is the roles-directory name of one role version (role names
// may be long or hold slashes, so they are hashed).
func roleFileName(name string, version int64) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:]) + "." + versionString(version) + ".json"
}

// pruneRoles removes role files the snapshots of s and prev no longer list.
func (m *Mirror) pruneRoles(snapshots ...*metadata.Metadata[metadata.SnapshotType]) {
	keep := map[string]bool{}
	for _, snap := range snapshots {
		if snap == nil {
			continue
		}
		for file, meta := range snap.Signed.Meta {
			keep[roleFileName(strings.TrimSuffix(file, ".json"), meta.Version)] = true
		}
	}
	dir := filepath.Join(m.cfg.StateDir, rolesDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("prune delegated role file", "file", e.Name(), "err", err)
			}
		}
	}
}

func (m *Mirror) downloadRole(ctx context.Context, name string, meta *metadata.MetaFiles, consistent bool) ([]byte, error) {
	file := url.PathEscape(name) + ".json"
	if consistent {
		file = versionString(meta.Version) + "." + file
	}
	u, err := url.JoinPath(m.cfg.MetadataURL, file)
	if err != nil {
		return nil, err
	}
	length := meta.Length
	if length == 0 {
		length = maxTargets
	}
	return m.t.getBytes(ctx, u, length)
}

// delegatedMetadata returns the bytes of a delegated role for the metadata
// endpoint: a role already verified on some path, else the first one the
// walk over every delegation reaches (bounded by MaxDelegatedRoles).
func (m *Mirror) delegatedMetadata(ctx context.Context, s *state, n MetadataName) ([]byte, error) {
	meta, ok := s.trusted.Snapshot.Signed.Meta[n.Role+".json"]
	if !ok || (n.Version != 0 && n.Version != meta.Version) {
		return nil, ErrNotFound
	}
	verified := func() bool {
		s.roles.mu.Lock()
		defer s.roles.mu.Unlock()
		for key := range s.roles.verified {
			if lastRole(key) == n.Role {
				return true
			}
		}
		return false
	}
	if !verified() {
		err := m.walk(ctx, s, "", true, m.cfg.MaxDelegatedRoles, func(name, _ string, _ *metadata.Metadata[metadata.TargetsType]) bool {
			return name == n.Role
		})
		if err != nil {
			return nil, err
		}
		if !verified() {
			return nil, ErrNotFound
		}
	}
	s.roles.mu.Lock()
	defer s.roles.mu.Unlock()
	return s.roles.raw[n.Role], nil
}
