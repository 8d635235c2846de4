package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a TUF repository served over HTTP for one test. Metadata is at
// MetadataURL(), targets at TargetsURL(). Change it (AddTarget, Delegate,
// RotateKeys, ...) then Publish. All methods are safe for concurrent use.
type Repo struct {
	t          testing.TB
	srv        *httptest.Server
	consistent bool
	hashAlgs   []string

	mu        sync.Mutex
	keys      map[string][]ed25519.PrivateKey // role -> signing keys
	signWith  map[string][]ed25519.PrivateKey // role -> override for next publishes
	root      *metadata.Metadata[metadata.RootType]
	targets   map[string]*metadata.Metadata[metadata.TargetsType]
	order     []string // targets roles in creation order
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	expires   map[string]time.Time
	dirty     map[string]bool
	published bool

	files     map[string][]byte  // served metadata: file name -> bytes
	history   map[string][]byte  // every published "V.role.json"
	content   map[string]Content // served target names -> content
	overrides map[string]http.Handler
	gets      map[string]int // request path -> GETs
	requests  []string       // request paths in order
}

// Option configures New.
type Option func(*Repo)

// WithoutConsistentSnapshot makes a repository whose root has
// consistent_snapshot false (plain target and metadata names).
func WithoutConsistentSnapshot() Option { return func(r *Repo) { r.consistent = false } }

// WithHashes sets the hash algorithms listed for targets (default sha256
// and sha512).
func WithHashes(algs ...string) Option { return func(r *Repo) { r.hashAlgs = algs } }

// WithThreshold gives a top-level role n keys and a threshold of n.
func WithThreshold(role string, n int) Option {
	return func(r *Repo) {
		r.keys[role] = nil
		for range n {
			r.keys[role] = append(r.keys[role], NewKey())
		}
	}
}

// NewKey returns a fresh ed25519 key.
func NewKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	return k
}

// KeyID returns the TUF key ID of k.
func KeyID(k ed25519.PrivateKey) string {
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	id, err := key.ID()
	if err != nil {
		panic(err)
	}
	return id
}

func tufKey(k ed25519.PrivateKey) *metadata.Key {
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	return key
}

// New builds a repository with one key per top-level role (unless
// WithThreshold says otherwise), consistent snapshots, no targets, publishes
// version 1 of everything and serves it until the test ends.
func New(t testing.TB, opts ...Option) *Repo {
	t.Helper()
	r := &Repo{
		t: t, consistent: true, hashAlgs: []string{"sha256", "sha512"},
		keys: map[string][]ed25519.PrivateKey{}, signWith: map[string][]ed25519.PrivateKey{},
		targets: map[string]*metadata.Metadata[metadata.TargetsType]{},
		expires: map[string]time.Time{}, dirty: map[string]bool{},
		files: map[string][]byte{}, history: map[string][]byte{}, content: map[string]Content{},
		overrides: map[string]http.Handler{}, gets: map[string]int{},
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		r.keys[role] = []ed25519.PrivateKey{NewKey()}
	}
	for _, o := range opts {
		o(r)
	}
	now := time.Now().UTC()
	r.root = metadata.Root(now.Add(365 * 24 * time.Hour))
	r.root.Signed.ConsistentSnapshot = r.consistent
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		for _, k := range r.keys[role] {
			if err := r.root.Signed.AddKey(tufKey(k), role); err != nil {
				t.Fatalf("tuftest: add key: %v", err)
			}
		}
		r.root.Signed.Roles[role].Threshold = len(r.keys[role])
	}
	r.targets[metadata.TARGETS] = metadata.Targets(now)
	r.order = []string{metadata.TARGETS}
	r.snapshot = metadata.Snapshot(now)
	r.timestamp = metadata.Timestamp(now)
	r.signRoot()
	r.dirty[metadata.TARGETS] = true
	r.publishLocked()
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the server's base URL.
func (r *Repo) URL() string { return r.srv.URL }

// MetadataURL is the base URL of the metadata files.
func (r *Repo) MetadataURL() string { return r.srv.URL + "/metadata" }

// TargetsURL is the base URL of the target files.
func (r *Repo) TargetsURL() string { return r.srv.URL + "/targets" }

// Server returns the test server (to close it, simulating an outage).
func (r *Repo) Server() *httptest.Server { return r.srv }

// Root returns version 1 of root.json: the root a client pins.
func (r *Repo) Root() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.history["1.root.json"]
}

// Keys returns the signing keys of a role.
func (r *Repo) Keys(role string) []ed25519.PrivateKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys[role])
}

// AddTarget adds (or replaces) a target in the top-level targets role.
func (r *Repo) AddTarget(path string, data []byte) {
	r.AddTargetContent(metadata.TARGETS, path, Bytes(data), nil)
}

// AddTargetContent adds a target with any Content and optional custom JSON
// to a targets role (top-level or delegated).
func (r *Repo) AddTargetContent(role, path string, c Content, custom json.RawMessage) {
	r.t.Helper()
	n, hashes, err := hashContent(c, r.hashAlgs)
	if err != nil {
		r.t.Fatalf("tuftest: add target %s: %v", path, err)
	}
	tf := metadata.TargetFile()
	tf.Path = path
	tf.Length = n
	for alg, h := range hashes {
		tf.Hashes[alg] = h
	}
	if custom != nil {
		raw := json.RawMessage(slices.Clone(custom))
		tf.Custom = &raw
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	md, ok := r.targets[role]
	if !ok {
		r.t.Fatalf("tuftest: add target %s: no role %s", path, role)
	}
	md.Signed.Targets[path] = tf
	r.dirty[role] = true
	r.content[path] = c
	for _, h := range hashes {
		r.content[hashPrefixed(path, h)] = c
	}
}

// RemoveTarget removes a target from a targets role.
func (r *Repo) RemoveTarget(role, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.targets[role].Signed.Targets, path)
	r.dirty[role] = true
}

// Delegate creates delegated role name under parent for paths (glob
// patterns), with a fresh key (or, when the role exists already, its keys).
func (r *Repo) Delegate(parent, name string, paths []string, terminating bool) {
	r.t.Helper()
	r.DelegateRole(parent, metadata.DelegatedRole{Name: name, Paths: paths, Terminating: terminating})
}

// DelegateRole adds role to parent's delegations, as given (Paths or
// PathHashPrefixes, Terminating), trusting keys with a threshold of
// len(keys). Without keys the delegation trusts the role's own keys. A new
// role is created, signed by keys (a fresh key when none are given); an
// existing one keeps its signing keys, so a delegation may name keys that do
// not sign the role.
func (r *Repo) DelegateRole(parent string, role metadata.DelegatedRole, keys ...ed25519.PrivateKey) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.targets[parent]
	if !ok {
		r.t.Fatalf("tuftest: delegate %s: no parent %s", role.Name, parent)
	}
	if _, exists := r.targets[role.Name]; !exists {
		if len(keys) == 0 {
			keys = []ed25519.PrivateKey{NewKey()}
		}
		r.keys[role.Name] = keys
		r.targets[role.Name] = metadata.Targets(time.Now())
		r.targets[role.Name].Signed.Version = 0 // the first publish makes it 1
		r.order = append(r.order, role.Name)
	} else if len(keys) == 0 {
		keys = r.keys[role.Name]
	}
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{}}
	}
	role.KeyIDs, role.Threshold = nil, len(keys)
	for _, k := range keys {
		p.Signed.Delegations.Keys[KeyID(k)] = tufKey(k)
		role.KeyIDs = append(role.KeyIDs, KeyID(k))
	}
	p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, role)
	r.dirty[parent] = true
	r.dirty[role.Name] = true
}

// SetExpires sets the expiry used for role from the next publish on.
func (r *Repo) SetExpires(role string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expires[role] = t
	r.dirty[role] = true
}

// SignWith makes the next publishes sign role with exactly keys (none:
// unsigned). Pass nil keys and call ResetSigning to go back to the role's
// own keys.
func (r *Repo) SignWith(role string, keys ...ed25519.PrivateKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if keys == nil {
		keys = []ed25519.PrivateKey{}
	}
	r.signWith[role] = keys
	r.dirty[role] = true
}

// ResetSigning undoes SignWith for role.
func (r *Repo) ResetSigning(role string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.signWith, role)
	r.dirty[role] = true
}

// RotateKeys replaces the keys of a top-level role with one fresh key,
// publishes a new root signed by the old and the new root keys, and
// re-publishes everything.
func (r *Repo) RotateKeys(role string) ed25519.PrivateKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldRoot := r.keys[metadata.ROOT]
	k := NewKey()
	for _, old := range r.keys[role] {
		if err := r.root.Signed.RevokeKey(KeyID(old), role); err != nil {
			r.t.Fatalf("tuftest: rotate %s: %v", role, err)
		}
	}
	if err := r.root.Signed.AddKey(tufKey(k), role); err != nil {
		r.t.Fatalf("tuftest: rotate %s: %v", role, err)
	}
	r.root.Signed.Roles[role].Threshold = 1
	r.keys[role] = []ed25519.PrivateKey{k}
	r.root.Signed.Version++
	r.root.Signed.Expires = time.Now().UTC().Add(365 * 24 * time.Hour)
	r.root.ClearSignatures()
	signers := oldRoot
	if role == metadata.ROOT {
		signers = append(slices.Clone(oldRoot), k)
	}
	for _, s := range signers {
		sign(r.t, r.root, s)
	}
	r.storeRoot()
	for _, name := range r.order {
		r.dirty[name] = true
	}
	r.publishLocked()
	return k
}

// Publish signs every changed targets role with a bumped version, then a
// new snapshot and timestamp.
func (r *Repo) Publish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked()
}

// PublishTimestamp re-signs only the timestamp, with a bumped version.
func (r *Repo) PublishTimestamp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishTimestamp()
}

func (r *Repo) keysFor(role string) []ed25519.PrivateKey {
	if ks, ok := r.signWith[role]; ok {
		return ks
	}
	return r.keys[role]
}

func (r *Repo) expiry(role string, def time.Duration) time.Time {
	if t, ok := r.expires[role]; ok {
		return t
	}
	return time.Now().UTC().Add(def).Truncate(time.Second)
}

func (r *Repo) signRoot() {
	r.root.ClearSignatures()
	for _, k := range r.keysFor(metadata.ROOT) {
		sign(r.t, r.root, k)
	}
	r.storeRoot()
}

func (r *Repo) storeRoot() {
	data := toBytes(r.t, r.root)
	name := strconv.FormatInt(r.root.Signed.Version, 10) + ".root.json"
	r.files[name] = data
	r.history[name] = data
	r.files["root.json"] = data
}

func (r *Repo) publishLocked() {
	for _, name := range r.order {
		if !r.dirty[name] && r.published {
			continue
		}
		md := r.targets[name]
		if r.published || name != metadata.TARGETS {
			md.Signed.Version++
		}
		md.Signed.Expires = r.expiry(name, 90*24*time.Hour)
		md.ClearSignatures()
		for _, k := range r.keysFor(name) {
			sign(r.t, md, k)
		}
		r.store(name, md.Signed.Version, toBytes(r.t, md))
		r.snapshot.Signed.Meta[name+".json"] = metadata.MetaFile(md.Signed.Version)
	}
	if r.published {
		r.snapshot.Signed.Version++
	}
	r.snapshot.Signed.Expires = r.expiry(metadata.SNAPSHOT, 7*24*time.Hour)
	r.snapshot.ClearSignatures()
	for _, k := range r.keysFor(metadata.SNAPSHOT) {
		sign(r.t, r.snapshot, k)
	}
	snap := toBytes(r.t, r.snapshot)
	r.store(metadata.SNAPSHOT, r.snapshot.Signed.Version, snap)
	sum := sha256.Sum256(snap)
	r.timestamp.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: r.snapshot.Signed.Version, Length: int64(len(snap)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	if !r.published {
		r.timestamp.Signed.Version = 0
	}
	r.publishTimestamp()
	r.published = true
	r.dirty = map[string]bool{}
}

func (r *Repo) publishTimestamp() {
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = r.expiry(metadata.TIMESTAMP, 24*time.Hour)
	r.timestamp.ClearSignatures()
	for _, k := range r.keysFor(metadata.TIMESTAMP) {
		sign(r.t, r.timestamp, k)
	}
	data := toBytes(r.t, r.timestamp)
	r.files["timestamp.json"] = data
	r.history[strconv.FormatInt(r.timestamp.Signed.Version, 10)+".timestamp.json"] = data
}

// store serves a published role file under its plain name and, with
// consistent snapshots, its versioned name.
func (r *Repo) store(role string, version int64, data []byte) {
	esc := url.PathEscape(role)
	versioned := strconv.FormatInt(version, 10) + "." + esc + ".json"
	r.history[versioned] = data
	r.files[esc+".json"] = data
	if r.consistent {
		r.files[versioned] = data
	}
}

// Metadata returns the bytes served now under a metadata file name.
func (r *Repo) Metadata(name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[name]
}

// Published returns any published version of a role's metadata, by
// "V.ROLE.json" (timestamps included), or nil.
func (r *Repo) Published(role string, version int64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.history[strconv.FormatInt(version, 10)+"."+url.PathEscape(role)+".json"]
}

// ServeMetadata makes the server answer name with data from now on
// (rollback, mix-and-match and tampering tests).
func (r *Repo) ServeMetadata(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[name] = data
}

// ServeTarget makes the server answer every name of a target path (plain and
// hash-prefixed) with c, without touching the metadata (tampering tests).
func (r *Repo) ServeTarget(path string, c Content) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.content {
		if name == path || strings.HasSuffix(name, "."+baseName(path)) && dirName(name) == dirName(path) {
			r.content[name] = c
		}
	}
}

// Handle makes the server answer a request path (e.g. "/targets/a.bin" or
// "/metadata/timestamp.json") with h, ahead of everything else; nil removes
// the override. GETs are still counted.
func (r *Repo) Handle(path string, h http.Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h == nil {
		delete(r.overrides, path)
		return
	}
	r.overrides[path] = h
}

// TargetPaths returns the request paths under which a target is served
// ("/targets/PATH" and "/targets/DIR/HASH.NAME" for each listed hash).
func (r *Repo) TargetPaths(role, path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{"/targets/" + path}
	if tf, ok := r.targets[role].Signed.Targets[path]; ok {
		for _, alg := range sortedAlgs(tf.Hashes) {
			out = append(out, "/targets/"+hashPrefixed(path, tf.Hashes[alg]))
		}
	}
	return out
}

// Gets returns how many GETs (and HEADs) reached a request path.
func (r *Repo) Gets(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[path]
}

// TargetGets returns the GETs of a top-level target under any of its names.
func (r *Repo) TargetGets(path string) int {
	n := 0
	for _, p := range r.TargetPaths(metadata.TARGETS, path) {
		n += r.Gets(p)
	}
	return n
}

// Requests returns the paths of every request so far, in order.
func (r *Repo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// TotalGets returns all requests served so far.
func (r *Repo) TotalGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.gets {
		n += c
	}
	return n
}

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.gets[req.URL.Path]++
	r.requests = append(r.requests, req.URL.Path)
	h := r.overrides[req.URL.Path]
	var data []byte
	var c Content
	var isMeta bool
	if name, ok := strings.CutPrefix(req.URL.EscapedPath(), "/metadata/"); ok {
		data, isMeta = r.files[name]
	} else if name, ok := strings.CutPrefix(req.URL.Path, "/targets/"); ok {
		c = r.content[name]
	}
	r.mu.Unlock()
	switch {
	case h != nil:
		h.ServeHTTP(w, req)
	case isMeta:
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	case c != nil:
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, req, "", time.Time{}, c.Open())
	default:
		http.NotFound(w, req)
	}
}

func sign[T metadata.Roles](t testing.TB, md *metadata.Metadata[T], k ed25519.PrivateKey) {
	s, err := signature.LoadSigner(k, crypto.Hash(0))
	if err != nil {
		t.Fatalf("tuftest: signer: %v", err)
	}
	if _, err := md.Sign(s); err != nil {
		t.Fatalf("tuftest: sign: %v", err)
	}
}

func toBytes[T metadata.Roles](t testing.TB, md *metadata.Metadata[T]) []byte {
	data, err := md.ToBytes(false)
	if err != nil {
		t.Fatalf("tuftest: encode: %v", err)
	}
	return data
}

func hashPrefixed(path string, digest []byte) string {
	return dirName(path) + fmt.Sprintf("%x", digest) + "." + baseName(path)
}

func dirName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return ""
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func sortedAlgs(h metadata.Hashes) []string {
	algs := make([]string, 0, len(h))
	for a := range h {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	return algs
}
