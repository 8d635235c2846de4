package tuf

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/atomicfile"
)

// The root ceremony: root keys never touch the appliance. Each holder makes a key
// on their own machine (GenerateRootKey); the appliance exports the next root
// version unsigned (ExportRoot, or InitRepository with RootPublicKeys for version
// 1); the holders sign copies of it elsewhere (SignRoot); the appliance imports
// the signatures (ImportRoot), which checks the thresholds of the current root
// and of the new one, writes the version and re-signs the online roles.

const pendingRootFile = "root-pending.json"

// GenerateRootKey writes a new ed25519 private key (PKCS#8 PEM, 0600) to path, which
// must not exist, and returns its public key as TUF key JSON (what ExportRoot and
// InitRepository take) and its key ID.
func GenerateRootKey(path string) (pub []byte, id string, err error) {
	key, err := newKeyFile(filepath.Dir(path), func(string) string { return path })
	if err != nil {
		return nil, "", fmt.Errorf("tuf: root keygen: %w", err)
	}
	id, _ = key.ID()
	pub, err = json.MarshalIndent(key, "", "  ")
	return pub, id, err
}

// ParsePublicKey reads TUF key JSON (GenerateRootKey's output) made in file (for
// error messages).
func ParsePublicKey(data []byte, file string) (*metadata.Key, error) {
	var k metadata.Key
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: not a TUF public key: %w", file, err)
	}
	if k.Type != metadata.KeyTypeEd25519 || len(k.Value.PublicKey) != 64 {
		return nil, fmt.Errorf("%s: want an ed25519 TUF public key (keytype %q, 64 hex digits), got keytype %q", file, metadata.KeyTypeEd25519, k.Type)
	}
	if _, err := k.ToPublicKey(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &k, nil
}

// RootChange is what the next root version changes.
type RootChange struct {
	// AddKeys are new root public keys (GenerateRootKey's JSON); RemoveKeys root key
	// IDs (or unique prefixes of at least 8 digits) to revoke.
	AddKeys    [][]byte
	RemoveKeys []string
	// Threshold is root's new threshold (0: unchanged).
	Threshold int
	// RotateOnline replaces the timestamp and snapshot keys with new ones made in
	// DIR/keys; the old ones are revoked, whether or not they are at hand (a lost or
	// leaked online key).
	RotateOnline bool
}

// ExportRoot writes the next root version, unsigned and with a fresh expiry, to
// DIR/root-pending.json (replacing an earlier proposal) and returns it: copy it to
// the root key holders for SignRoot. A version with only a new expiry renews root.
func (p *Publisher) ExportRoot(ch RootChange) ([]byte, error) {
	unlock, err := p.lock("root export")
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := p.loadRoot()
	if err != nil {
		return nil, fmt.Errorf("tuf: root export: %w", err)
	}
	next, err := metadata.Root().FromBytes(mustBytes(cur))
	if err != nil {
		return nil, fmt.Errorf("tuf: root export: %w", err)
	}
	next.Signed.Version++
	next.Signed.Expires = p.expiry(p.now().UTC(), p.settings.RootExpires)
	next.ClearSignatures()
	for i, data := range ch.AddKeys {
		k, err := ParsePublicKey(data, fmt.Sprintf("key %d", i+1))
		if err != nil {
			return nil, fmt.Errorf("tuf: root export: %w", err)
		}
		if err := next.Signed.AddKey(k, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("tuf: root export: %w", err)
		}
	}
	for _, prefix := range ch.RemoveKeys {
		id, err := matchKeyID(next.Signed.Roles[metadata.ROOT].KeyIDs, prefix)
		if err != nil {
			return nil, fmt.Errorf("tuf: root export: remove key: %w", err)
		}
		if err := next.Signed.RevokeKey(id, metadata.ROOT); err != nil {
			return nil, fmt.Errorf("tuf: root export: %w", err)
		}
	}
	rootRole := next.Signed.Roles[metadata.ROOT]
	if ch.Threshold > 0 {
		rootRole.Threshold = ch.Threshold
	}
	if rootRole.Threshold < 1 || rootRole.Threshold > len(rootRole.KeyIDs) {
		return nil, fmt.Errorf("tuf: root export: root threshold %d must be between 1 and the %d root keys", rootRole.Threshold, len(rootRole.KeyIDs))
	}
	if ch.RotateOnline {
		for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
			for _, id := range slices.Clone(next.Signed.Roles[role].KeyIDs) {
				if err := next.Signed.RevokeKey(id, role); err != nil {
					return nil, fmt.Errorf("tuf: root export: %w", err)
				}
			}
			key, err := generateKey(p.keysDir())
			if err != nil {
				return nil, fmt.Errorf("tuf: root export: new %s key: %w", role, err)
			}
			if err := next.Signed.AddKey(key, role); err != nil {
				return nil, fmt.Errorf("tuf: root export: %w", err)
			}
			next.Signed.Roles[role].Threshold = 1
		}
	}
	data, err := next.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("tuf: root export: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(p.dir, pendingRootFile), data, 0o644); err != nil {
		return nil, fmt.Errorf("tuf: root export: %w", err)
	}
	return data, nil
}

func mustBytes(root *metadata.Metadata[metadata.RootType]) []byte {
	b, _ := root.ToBytes(false)
	return b
}

func matchKeyID(ids []string, prefix string) (string, error) {
	if len(prefix) < 8 {
		return "", fmt.Errorf("key ID %q: give at least 8 hex digits", prefix)
	}
	var found []string
	for _, id := range ids {
		if strings.HasPrefix(id, strings.ToLower(prefix)) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("key ID %q matches %d root keys, want 1", prefix, len(found))
	}
	return found[0], nil
}

// SignRoot signs root metadata (an exported proposal, maybe already signed by
// others) with the private key in keyFile, on the key holder's machine, and returns
// the signed metadata and the key's ID. listed reports whether the key is one of
// the proposal's root keys (a key of the current root being replaced signs too).
func SignRoot(data []byte, keyFile string) (signed []byte, id string, listed bool, err error) {
	md, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, "", false, fmt.Errorf("tuf: root sign: not root metadata: %w", err)
	}
	priv, id, err := readKeyFile(keyFile)
	if err != nil {
		return nil, "", false, fmt.Errorf("tuf: root sign: %w", err)
	}
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return nil, "", false, fmt.Errorf("tuf: root sign: %w", err)
	}
	md.Signatures = slices.DeleteFunc(md.Signatures, func(s metadata.Signature) bool { return s.KeyID == id })
	if _, err := md.Sign(s); err != nil {
		return nil, "", false, fmt.Errorf("tuf: root sign: %w", err)
	}
	signed, err = md.ToBytes(true)
	return signed, id, slices.Contains(md.Signed.Roles[metadata.ROOT].KeyIDs, id), err
}

// ImportRoot collects the signatures of signed copies of the pending root
// (DIR/root-pending.json), checks that they meet the threshold of the current root
// and of the new one, writes it as the next root version and re-signs snapshot and
// timestamp with the online keys it names (for version 1: the first publish).
// Online key files the new root revokes are deleted. It returns the new version.
func (p *Publisher) ImportRoot(ctx context.Context, signed ...[]byte) (int64, error) {
	unlock, err := p.lock("root import")
	if err != nil {
		return 0, err
	}
	defer unlock()
	pendingPath := filepath.Join(p.dir, pendingRootFile)
	pending, err := metadata.Root().FromFile(pendingPath)
	if err != nil {
		return 0, fmt.Errorf("tuf: root import: no pending root (run `patchgate tuf root export` first): %w", err)
	}
	want, _ := json.Marshal(pending.Signed)
	for i, data := range signed {
		md, err := metadata.Root().FromBytes(data)
		if err != nil {
			return 0, fmt.Errorf("tuf: root import: file %d: not root metadata: %w", i+1, err)
		}
		if got, _ := json.Marshal(md.Signed); !bytes.Equal(got, want) {
			return 0, fmt.Errorf("tuf: root import: file %d is not the pending root version %d (exported again since?)", i+1, pending.Signed.Version)
		}
		for _, s := range md.Signatures {
			if !slices.ContainsFunc(pending.Signatures, func(o metadata.Signature) bool { return o.KeyID == s.KeyID }) {
				pending.Signatures = append(pending.Signatures, s)
			}
		}
	}
	now := p.now().UTC()
	if pending.Signed.IsExpired(now) {
		return 0, fmt.Errorf("tuf: root import: pending root version %d expired at %s; export it again", pending.Signed.Version, pending.Signed.Expires.Format(time.RFC3339))
	}
	cur, err := p.loadRoot()
	first := errors.Is(err, os.ErrNotExist) && pending.Signed.Version == 1
	if err != nil && !first {
		return 0, fmt.Errorf("tuf: root import: %w", err)
	}
	if !first {
		if pending.Signed.Version != cur.Signed.Version+1 {
			return 0, fmt.Errorf("tuf: root import: pending root is version %d, the current is %d (export again)", pending.Signed.Version, cur.Signed.Version)
		}
		if err := cur.VerifyDelegate(metadata.ROOT, pending); err != nil {
			return 0, fmt.Errorf("tuf: root import: signatures of the current root version %d's keys: %w: %v (%d needed)",
				cur.Signed.Version, ErrThreshold, err, cur.Signed.Roles[metadata.ROOT].Threshold)
		}
	}
	if err := pending.VerifyDelegate(metadata.ROOT, pending); err != nil {
		return 0, fmt.Errorf("tuf: root import: signatures of the new root version %d's keys: %w: %v (%d needed)",
			pending.Signed.Version, ErrThreshold, err, pending.Signed.Roles[metadata.ROOT].Threshold)
	}
	if err := p.writeRoot(pending); err != nil {
		return 0, fmt.Errorf("tuf: root import: %w", err)
	}
	if first {
		_, err = p.publish(ctx)
	} else {
		_, err = p.resign(ctx, true)
	}
	if err != nil {
		return pending.Signed.Version, fmt.Errorf("tuf: root import: root version %d written, but: %w", pending.Signed.Version, err)
	}
	os.Remove(pendingPath)
	if !first {
		for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP, metadata.TARGETS} {
			for _, id := range cur.Signed.Roles[role].KeyIDs {
				if !inAnyRole(pending.Signed, id) {
					os.Remove(filepath.Join(p.keysDir(), id+".pem"))
				}
			}
		}
	}
	return pending.Signed.Version, nil
}

func inAnyRole(r metadata.RootType, id string) bool {
	for _, role := range r.Roles {
		if slices.Contains(role.KeyIDs, id) {
			return true
		}
	}
	return false
}

// PendingRoot is the exported, not yet imported, root proposal (nil when none).
func (p *Publisher) PendingRoot() ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(p.dir, pendingRootFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
