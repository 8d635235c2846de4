package tuf

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/patchgate/patchgate/atomicfile"
)

// A Publisher maintains a TUF repository on disk, for sites that vet vendor
// patches and sign them themselves:
//
//	DIR/publisher.json            expiry settings
//	DIR/keys/KEYID.pem            online keys: targets, snapshot, timestamp
//	DIR/root-keys/KEYID.pem       root keys (move them offline; see RootKeysDir)
//	DIR/staged-targets.json       targets added/removed since the last publish
//	DIR/repository/metadata/      what to serve as the metadata URL
//	DIR/repository/targets/       what to serve as the targets URL
//
// Keys are ed25519, PKCS#8 PEM, mode 0600. A Publisher is not safe for
// concurrent use, nor for two processes on one directory.
type Publisher struct {
	dir         string
	rootKeysDir string
	now         func() time.Time
	settings    publisherSettings
}

type publisherSettings struct {
	RootExpires      Duration `json:"root_expires"`
	TargetsExpires   Duration `json:"targets_expires"`
	SnapshotExpires  Duration `json:"snapshot_expires"`
	TimestampExpires Duration `json:"timestamp_expires"`
}

// Duration is a time.Duration that reads and writes as "720h0m0s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// InitOptions configure a new repository. Zero values take the defaults.
type InitOptions struct {
	RootKeys         int           // root keys to generate (default 1)
	RootThreshold    int           // root signatures required (default RootKeys)
	RootExpires      time.Duration // default 1 year
	TargetsExpires   time.Duration // default 90 days
	SnapshotExpires  time.Duration // default 7 days
	TimestampExpires time.Duration // default 1 day
	// RootKeysDir is where root keys are written (default DIR/root-keys).
	RootKeysDir string
	// RootPublicKeys, when set, are the root keys (GenerateRootKey's JSON), made and
	// kept off this machine: no root key is generated, root version 1 is left
	// unsigned in DIR/root-pending.json for the ceremony (SignRoot, ImportRoot,
	// which publishes the first state), and RootKeys is ignored.
	RootPublicKeys [][]byte
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// PublisherOptions open an existing repository.
type PublisherOptions struct {
	// RootKeysDir is where root keys are read from (default DIR/root-keys).
	RootKeysDir string
	Now         func() time.Time
	// SnapshotExpires and TimestampExpires, when set, replace publisher.json's
	// lifetimes of the online roles (the daemon's tuf.site settings).
	SnapshotExpires, TimestampExpires time.Duration
}

const (
	publisherFile = "publisher.json"
	stagedFile    = "staged-targets.json"
)

// InitRepository creates a repository in dir (which must not hold one):
// keys for every top-level role, root version 1, and a first published,
// empty, targets/snapshot/timestamp.
func InitRepository(ctx context.Context, dir string, opts InitOptions) (*Publisher, error) {
	if _, err := os.Stat(filepath.Join(dir, publisherFile)); err == nil {
		return nil, fmt.Errorf("tuf: init %s: a repository already exists there", dir)
	}
	opts.RootKeys = max(opts.RootKeys, 1)
	if len(opts.RootPublicKeys) > 0 {
		opts.RootKeys = len(opts.RootPublicKeys)
	}
	if opts.RootThreshold == 0 {
		opts.RootThreshold = opts.RootKeys
	}
	if opts.RootThreshold < 1 || opts.RootThreshold > opts.RootKeys {
		return nil, fmt.Errorf("tuf: init %s: root threshold %d must be between 1 and the %d root keys", dir, opts.RootThreshold, opts.RootKeys)
	}
	p := &Publisher{dir: dir, rootKeysDir: opts.RootKeysDir, now: opts.Now, settings: publisherSettings{
		RootExpires: Duration(orDuration(opts.RootExpires, 365*24*time.Hour)), TargetsExpires: Duration(orDuration(opts.TargetsExpires, 90*24*time.Hour)),
		SnapshotExpires: Duration(orDuration(opts.SnapshotExpires, 7*24*time.Hour)), TimestampExpires: Duration(orDuration(opts.TimestampExpires, 24*time.Hour)),
	}}
	p.defaults()
	for _, d := range []string{p.keysDir(), p.rootKeysDir, p.metadataDir(), p.targetsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("tuf: init %s: %w", dir, err)
		}
	}
	now := p.now().UTC()
	root := metadata.Root(now.Add(time.Duration(p.settings.RootExpires)).Truncate(time.Second))
	root.Signed.ConsistentSnapshot = true
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		n, dir := 1, p.keysDir()
		if role == metadata.ROOT {
			n, dir = opts.RootKeys, p.rootKeysDir
			if len(opts.RootPublicKeys) > 0 {
				n = 0
				for i, data := range opts.RootPublicKeys {
					key, err := ParsePublicKey(data, fmt.Sprintf("root key %d", i+1))
					if err != nil {
						return nil, fmt.Errorf("tuf: init: %w", err)
					}
					if err := root.Signed.AddKey(key, role); err != nil {
						return nil, fmt.Errorf("tuf: init: %w", err)
					}
				}
			}
		}
		for range n {
			key, err := generateKey(dir)
			if err != nil {
				return nil, fmt.Errorf("tuf: init: %w", err)
			}
			if err := root.Signed.AddKey(key, role); err != nil {
				return nil, fmt.Errorf("tuf: init: %w", err)
			}
		}
	}
	root.Signed.Roles[metadata.ROOT].Threshold = opts.RootThreshold
	if len(root.Signed.Roles[metadata.ROOT].KeyIDs) != opts.RootKeys {
		return nil, fmt.Errorf("tuf: init: the %d root keys are not all different", opts.RootKeys)
	}
	if len(opts.RootPublicKeys) > 0 {
		data, err := root.ToBytes(true)
		if err == nil {
			err = atomicfile.Write(filepath.Join(dir, pendingRootFile), data, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("tuf: init: %w", err)
		}
	} else {
		if err := p.signWith(root, metadata.ROOT, root.Signed.Roles[metadata.ROOT]); err != nil {
			return nil, fmt.Errorf("tuf: init: %w", err)
		}
		if err := p.writeRoot(root); err != nil {
			return nil, fmt.Errorf("tuf: init: %w", err)
		}
	}
	settings, _ := json.MarshalIndent(p.settings, "", "  ")
	if err := atomicfile.Write(filepath.Join(dir, publisherFile), settings, 0o600); err != nil {
		return nil, fmt.Errorf("tuf: init: %w", err)
	}
	staged := metadata.Targets(now)
	staged.Signed.Version = 0
	if err := p.saveStaged(staged); err != nil {
		return nil, fmt.Errorf("tuf: init: %w", err)
	}
	if len(opts.RootPublicKeys) > 0 {
		return p, nil // published by ImportRoot
	}
	if _, err := p.publish(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// OpenPublisher opens the repository in dir.
func OpenPublisher(dir string, opts PublisherOptions) (*Publisher, error) {
	data, err := os.ReadFile(filepath.Join(dir, publisherFile))
	if err != nil {
		return nil, fmt.Errorf("tuf: open repository %s: %w (create one with `patchgate tuf init`)", dir, err)
	}
	p := &Publisher{dir: dir, rootKeysDir: opts.RootKeysDir, now: opts.Now}
	if err := json.Unmarshal(data, &p.settings); err != nil {
		return nil, fmt.Errorf("tuf: open repository %s: %s: %w", dir, publisherFile, err)
	}
	if opts.SnapshotExpires > 0 {
		p.settings.SnapshotExpires = Duration(opts.SnapshotExpires)
	}
	if opts.TimestampExpires > 0 {
		p.settings.TimestampExpires = Duration(opts.TimestampExpires)
	}
	p.defaults()
	return p, nil
}

func (p *Publisher) defaults() {
	if p.rootKeysDir == "" {
		p.rootKeysDir = filepath.Join(p.dir, "root-keys")
	}
	if p.now == nil {
		p.now = time.Now
	}
}

func (p *Publisher) keysDir() string     { return filepath.Join(p.dir, "keys") }
func (p *Publisher) metadataDir() string { return filepath.Join(p.dir, "repository", "metadata") }
func (p *Publisher) targetsDir() string  { return filepath.Join(p.dir, "repository", "targets") }

// MetadataDir is the directory to serve as the repository's metadata URL.
func (p *Publisher) MetadataDir() string { return p.metadataDir() }

// TargetsDir is the directory to serve as the repository's targets URL.
func (p *Publisher) TargetsDir() string { return p.targetsDir() }

// RootPath is the published root version 1: what mirrors pin.
func (p *Publisher) RootPath() string { return filepath.Join(p.metadataDir(), "1.root.json") }

// generateKey makes an ed25519 key, writes it to dir/KEYID.pem (0600) and
// returns its public TUF key.
func generateKey(dir string) (*metadata.Key, error) {
	return newKeyFile(dir, func(id string) string { return filepath.Join(dir, id+".pem") })
}

// newKeyFile makes an ed25519 key and writes it (PKCS#8 PEM, 0600) to
// name(KEYID) in dir, never over an existing file.
func newKeyFile(dir string, name func(id string) string) (*metadata.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id, err := key.ID()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := name(id)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s: already exists", path)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// loadKey reads the private key KEYID.pem from the first of dirs holding it.
func loadKey(id string, dirs ...string) (ed25519.PrivateKey, error) {
	for _, d := range dirs {
		priv, gotID, err := readKeyFile(filepath.Join(d, id+".pem"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if gotID != id {
			return nil, fmt.Errorf("%s: holds key %s, not %s", filepath.Join(d, id+".pem"), gotID, id)
		}
		return priv, nil
	}
	return nil, os.ErrNotExist
}

// readKeyFile reads an ed25519 private key (PKCS#8 PEM) and its TUF key ID.
func readKeyFile(path string) (ed25519.PrivateKey, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("%s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, "", fmt.Errorf("%s: not an ed25519 key", path)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	id, err := key.ID()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return priv, id, nil
}

// ErrThreshold is returned (wrapped) when too few of a role's keys are at
// hand to sign it.
var ErrThreshold = errors.New("signature threshold not met")

// signWith signs md with every key of role it can find, and fails unless
// that meets the threshold.
func (p *Publisher) signWith(md interface {
	Sign(signature.Signer) (*metadata.Signature, error)
}, role string, r *metadata.Role) error {
	dirs := []string{p.keysDir(), p.rootKeysDir}
	if role == metadata.ROOT {
		dirs = []string{p.rootKeysDir, p.keysDir()}
	}
	var missing []string
	signed := 0
	for _, id := range r.KeyIDs {
		priv, err := loadKey(id, dirs...)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
		s, err := signature.LoadSigner(priv, crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
		if _, err := md.Sign(s); err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
		signed++
	}
	if signed < r.Threshold {
		if signed == 0 {
			return fmt.Errorf("sign %s: missing key: none of the %s keys (%s) is in %s: %w", role, role, shortIDs(missing), strings.Join(dirs, " or "), ErrThreshold)
		}
		return fmt.Errorf("sign %s: %w: have %d of the %d keys needed (missing %s in %s)", role, ErrThreshold, signed, r.Threshold, shortIDs(missing), strings.Join(dirs, " or "))
	}
	return nil
}

func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))] + "…"
	}
	return strings.Join(out, ", ")
}

func (p *Publisher) loadRoot() (*metadata.Metadata[metadata.RootType], error) {
	root, err := metadata.Root().FromFile(filepath.Join(p.metadataDir(), "root.json"))
	if err != nil {
		return nil, fmt.Errorf("read root: %w", err)
	}
	return root, nil
}

func (p *Publisher) writeRoot(root *metadata.Metadata[metadata.RootType]) error {
	data, err := root.ToBytes(true)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(p.metadataDir(), fmt.Sprintf("%d.root.json", root.Signed.Version)), data, 0o644); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(p.metadataDir(), "root.json"), data, 0o644)
}

func (p *Publisher) loadStaged() (*metadata.Metadata[metadata.TargetsType], error) {
	data, err := os.ReadFile(filepath.Join(p.dir, stagedFile))
	if err != nil {
		return nil, err
	}
	md := metadata.Targets()
	if err := json.Unmarshal(data, md); err != nil {
		return nil, fmt.Errorf("%s: %w", stagedFile, err)
	}
	if md.Signed.Targets == nil {
		md.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	for path, tf := range md.Signed.Targets {
		tf.Path = path
	}
	return md, nil
}

func (p *Publisher) saveStaged(md *metadata.Metadata[metadata.TargetsType]) error {
	md.Signatures = []metadata.Signature{}
	data, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(p.dir, stagedFile), data, 0o600)
}

// Add stages the file at localPath as target path (published by the next
// Publish). It streams the file once, computing its length, sha256 and
// sha512 while copying it into the repository's targets directory under its
// consistent-snapshot names; it never holds the file in memory.
func (p *Publisher) Add(ctx context.Context, localPath, path string, custom json.RawMessage) (TargetInfo, error) {
	tn, err := ParseTargetPath(path)
	if err != nil || tn.Hash != "" {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: bad target path %q", localPath, path)
	}
	if custom != nil && !json.Valid(custom) {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: --custom is not valid JSON", localPath)
	}
	unlock, err := p.lock("add")
	if err != nil {
		return TargetInfo{}, err
	}
	defer unlock()
	staged, err := p.loadStaged()
	if err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	src, err := os.Open(localPath)
	if err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	defer src.Close()
	dstDir := filepath.Join(p.targetsDir(), filepath.FromSlash(dirOf(path)))
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dstDir, ".add-*")
	if err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(tmp, h256, h512), ctxReader{ctx, src})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	tf := metadata.TargetFile()
	tf.Path, tf.Length = path, n
	tf.Hashes["sha256"], tf.Hashes["sha512"] = h256.Sum(nil), h512.Sum(nil)
	if custom != nil {
		raw := json.RawMessage(slices.Clone(custom))
		tf.Custom = &raw
	}
	// The sha256 name first, then hard links for the other names.
	first := filepath.Join(p.targetsDir(), filepath.FromSlash(hashPrefixed(path, tf.Hashes["sha256"])))
	if err := os.Rename(tmp.Name(), first); err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	for _, name := range []string{hashPrefixed(path, tf.Hashes["sha512"]), path} {
		dst := filepath.Join(p.targetsDir(), filepath.FromSlash(name))
		os.Remove(dst)
		if err := os.Link(first, dst); err != nil {
			return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
		}
	}
	staged.Signed.Targets[path] = tf
	if err := p.saveStaged(staged); err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: add %s: %w", path, err)
	}
	return targetInfo(path, metadata.TARGETS, tf), nil
}

type ctxReader struct {
	ctx context.Context // the one Add call's
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// Remove stages the removal of target path. Its files stay in the targets
// directory (clients of the previous version may still fetch them).
func (p *Publisher) Remove(path string) error {
	unlock, err := p.lock("remove")
	if err != nil {
		return err
	}
	defer unlock()
	staged, err := p.loadStaged()
	if err != nil {
		return fmt.Errorf("tuf: remove %s: %w", path, err)
	}
	if _, ok := staged.Signed.Targets[path]; !ok {
		return fmt.Errorf("tuf: remove %s: no such target", path)
	}
	delete(staged.Signed.Targets, path)
	return p.saveStaged(staged)
}

// Staged lists the targets the next Publish will list, sorted by path.
func (p *Publisher) Staged() ([]TargetInfo, error) {
	staged, err := p.loadStaged()
	if err != nil {
		return nil, fmt.Errorf("tuf: staged: %w", err)
	}
	var out []TargetInfo
	for _, path := range sortedKeys(staged.Signed.Targets) {
		out = append(out, targetInfo(path, metadata.TARGETS, staged.Signed.Targets[path]))
	}
	return out, nil
}

// Published reports the versions a Publish wrote.
type Published struct {
	Targets, Snapshot, Timestamp int64
	Expires                      time.Time // the timestamp's expiry
}

// Publish signs the staged targets as a new targets version, then a new
// snapshot and timestamp, each with its configured expiry, and writes them
// (timestamp last, each atomically). It fails, writing nothing, if root has
// expired or a role's keys are missing or under its threshold.
func (p *Publisher) Publish(ctx context.Context) (Published, error) {
	unlock, err := p.lock("publish")
	if err != nil {
		return Published{}, err
	}
	defer unlock()
	return p.publish(ctx)
}

func (p *Publisher) publish(ctx context.Context) (Published, error) {
	now, root, err := p.liveRoot(ctx, "publish")
	if err != nil {
		return Published{}, err
	}
	targets, err := p.loadStaged()
	if err != nil {
		return Published{}, fmt.Errorf("tuf: publish: %w", err)
	}
	var cur Published
	if ts, err := metadata.Timestamp().FromFile(filepath.Join(p.metadataDir(), "timestamp.json")); err == nil {
		cur.Timestamp = ts.Signed.Version
		cur.Snapshot = ts.Signed.Meta["snapshot.json"].Version
		if sn, err := metadata.Snapshot().FromFile(filepath.Join(p.metadataDir(), "snapshot.json")); err == nil {
			cur.Targets = sn.Signed.Meta["targets.json"].Version
		}
	}
	targets.Signed.Version = cur.Targets + 1
	targets.Signed.Expires = p.expiry(now, p.settings.TargetsExpires)
	targets.ClearSignatures()
	if err := p.signWith(targets, metadata.TARGETS, root.Signed.Roles[metadata.TARGETS]); err != nil {
		return Published{}, fmt.Errorf("tuf: publish: %w", err)
	}
	targetsBytes, err := targets.ToBytes(true)
	if err != nil {
		return Published{}, fmt.Errorf("tuf: publish: %w", err)
	}
	// The snapshot gives targets.json's length: clients then read no more than that,
	// and a mirror takes a role of any size it lists (without a length it stops at its
	// 5 MB default, about 30,000 targets).
	meta := map[string]*metadata.MetaFiles{"targets.json": {Version: targets.Signed.Version, Length: int64(len(targetsBytes))}}
	snapBytes, tsBytes, err := p.signOnline(root, now, cur, meta, nil)
	if err != nil {
		return Published{}, fmt.Errorf("tuf: publish: %w", err)
	}
	// Check the whole new state as a client would before writing it.
	if err := p.selfCheck(now, tsBytes, snapBytes, targetsBytes); err != nil {
		return Published{}, fmt.Errorf("tuf: publish: self-check: %w", err)
	}
	if err := p.writeTop(targets.Signed.Version, targetsBytes, cur.Snapshot+1, snapBytes, tsBytes); err != nil {
		return Published{}, fmt.Errorf("tuf: publish: %w", err)
	}
	return Published{Targets: targets.Signed.Version, Snapshot: cur.Snapshot + 1, Timestamp: cur.Timestamp + 1,
		Expires: p.expiry(now, p.settings.TimestampExpires)}, nil
}

// liveRoot is the clock's time and the current root, which must not have expired.
func (p *Publisher) liveRoot(ctx context.Context, op string) (time.Time, *metadata.Metadata[metadata.RootType], error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, nil, err
	}
	now := p.now().UTC()
	root, err := p.loadRoot()
	if err != nil {
		return now, nil, fmt.Errorf("tuf: %s: %w", op, err)
	}
	if root.Signed.IsExpired(now) {
		return now, nil, fmt.Errorf("tuf: %s: root version %d expired at %s; renew it with the root ceremony (`patchgate tuf root export`, sign, import) or `patchgate tuf rotate --role root --keep-keys` (needs the root keys)",
			op, root.Signed.Version, root.Signed.Expires.Format(time.RFC3339))
	}
	return now, root, nil
}

// selfCheck verifies a new state from the published root chain.
func (p *Publisher) selfCheck(now time.Time, ts, snap, targets []byte) error {
	first, err := os.ReadFile(filepath.Join(p.metadataDir(), "1.root.json"))
	if err != nil {
		return err
	}
	var chain [][]byte
	for v := 2; ; v++ {
		data, err := os.ReadFile(filepath.Join(p.metadataDir(), fmt.Sprintf("%d.root.json", v)))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		chain = append(chain, data)
	}
	tm, _, err := verifyChain(first, chain, now)
	if err != nil {
		return err
	}
	return loadTop(tm, ts, snap, targets)
}

func loadTop(tm *trustedmetadata.TrustedMetadata, ts, snap, targets []byte) error {
	if _, err := tm.UpdateTimestamp(ts); err != nil {
		return err
	}
	if _, err := tm.UpdateSnapshot(snap, false); err != nil {
		return err
	}
	if targets == nil {
		return nil
	}
	_, err := tm.UpdateTargets(targets)
	return err
}

// RotateOptions say what Rotate changes.
type RotateOptions struct {
	// Role is the top-level role whose keys are replaced.
	Role string
	// Keys is how many fresh keys replace the role's keys (default 1);
	// with KeepKeys, none.
	Keys int
	// Threshold is the role's new threshold (default Keys).
	Threshold int
	// KeepKeys keeps the role's keys: only root's version and expiry are
	// renewed (e.g. before it expires).
	KeepKeys bool
}

// Rotate writes a new root version that replaces the keys of a role (or,
// with KeepKeys, only renews root's expiry), signed by the threshold of the
// current root keys and, for a root rotation, of the new ones; then it
// publishes targets, snapshot and timestamp signed with the current keys.
// It returns the IDs of the new keys.
func (p *Publisher) Rotate(ctx context.Context, opts RotateOptions) ([]string, error) {
	if !slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], opts.Role) {
		return nil, fmt.Errorf("tuf: rotate: role %q: want one of %v", opts.Role, metadata.TOP_LEVEL_ROLE_NAMES)
	}
	unlock, err := p.lock("rotate")
	if err != nil {
		return nil, err
	}
	defer unlock()
	root, err := p.loadRoot()
	if err != nil {
		return nil, fmt.Errorf("tuf: rotate: %w", err)
	}
	oldRootRole := *root.Signed.Roles[metadata.ROOT]
	oldRootRole.KeyIDs = slices.Clone(oldRootRole.KeyIDs)
	var newIDs []string
	if !opts.KeepKeys {
		opts.Keys = max(opts.Keys, 1)
		if opts.Threshold == 0 {
			opts.Threshold = opts.Keys
		}
		if opts.Threshold < 1 || opts.Threshold > opts.Keys {
			return nil, fmt.Errorf("tuf: rotate %s: threshold %d must be between 1 and the %d keys", opts.Role, opts.Threshold, opts.Keys)
		}
		for _, id := range slices.Clone(root.Signed.Roles[opts.Role].KeyIDs) {
			if err := root.Signed.RevokeKey(id, opts.Role); err != nil {
				return nil, fmt.Errorf("tuf: rotate %s: %w", opts.Role, err)
			}
		}
		dir := p.keysDir()
		if opts.Role == metadata.ROOT {
			dir = p.rootKeysDir
		}
		for range opts.Keys {
			key, err := generateKey(dir)
			if err != nil {
				return nil, fmt.Errorf("tuf: rotate %s: %w", opts.Role, err)
			}
			if err := root.Signed.AddKey(key, opts.Role); err != nil {
				return nil, fmt.Errorf("tuf: rotate %s: %w", opts.Role, err)
			}
			id, _ := key.ID()
			newIDs = append(newIDs, id)
		}
		root.Signed.Roles[opts.Role].Threshold = opts.Threshold
	}
	root.Signed.Version++
	root.Signed.Expires = p.now().UTC().Add(time.Duration(p.settings.RootExpires)).Truncate(time.Second)
	root.ClearSignatures()
	// Signed by the old root keys (threshold of the old root) and, when
	// they differ, the new ones (threshold of the new root).
	if err := p.signWith(root, metadata.ROOT, &oldRootRole); err != nil {
		return nil, fmt.Errorf("tuf: rotate: %w", err)
	}
	if opts.Role == metadata.ROOT && !opts.KeepKeys {
		if err := p.signWith(root, metadata.ROOT, root.Signed.Roles[metadata.ROOT]); err != nil {
			return nil, fmt.Errorf("tuf: rotate: %w", err)
		}
	}
	if err := p.writeRoot(root); err != nil {
		return nil, fmt.Errorf("tuf: rotate: %w", err)
	}
	if _, err := p.publish(ctx); err != nil {
		return newIDs, err
	}
	return newIDs, nil
}
