package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Checkpoint is a signed statement of the trail's size and content: the RFC 6962 Merkle
// tree root over the first Size record hashes (each leaf is a record's 32-byte hash) and
// the hash of record Size. Copy checkpoints.log and checkpoint.pub off the box: any
// later change to the first Size records, or their removal, no longer matches.
type Checkpoint struct {
	Size      uint64    `json:"size"`
	Time      time.Time `json:"time"`
	Root      string    `json:"root"`
	LastHash  string    `json:"last_hash"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

// Message is the exact byte string the signature covers.
func (c Checkpoint) Message() []byte {
	return fmt.Appendf(nil, "patchgate audit checkpoint v1\nsize %d\ntime %s\nroot %s\nlast %s\n",
		c.Size, c.Time.UTC().Format(timeFormat), c.Root, c.LastHash)
}

func (c Checkpoint) line() []byte {
	c.Time = c.Time.UTC()
	b, _ := json.Marshal(c)
	return append(b, '\n')
}

// VerifySignature checks the checkpoint's signature with pub.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	if c.KeyID != keyID(pub) {
		return fmt.Errorf("signed by key %s, not by %s", c.KeyID, keyID(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.Message(), sig) {
		return errors.New("bad signature")
	}
	return nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

type signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func (s signer) sign(c *Checkpoint) {
	c.KeyID = keyID(s.pub)
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, c.Message()))
}

// loadOrMakeKey reads the checkpoint signing key from dir, making it on first start.
func loadOrMakeKey(dir string) (signer, error) {
	privPath := filepath.Join(dir, PrivateKeyFile)
	b, err := os.ReadFile(privPath)
	if errors.Is(err, fs.ErrNotExist) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return signer{}, fmt.Errorf("audit: make checkpoint key: %w", err)
		}
		if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PATCHGATE AUDIT CHECKPOINT KEY", Bytes: priv.Seed()}), 0o600); err != nil {
			return signer{}, fmt.Errorf("audit: make checkpoint key: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PATCHGATE AUDIT CHECKPOINT PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return signer{}, fmt.Errorf("audit: make checkpoint key: %w", err)
		}
		return signer{priv, pub}, nil
	}
	if err != nil {
		return signer{}, fmt.Errorf("audit: read checkpoint key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || len(blk.Bytes) != ed25519.SeedSize {
		return signer{}, fmt.Errorf("audit: %s is not a checkpoint key", privPath)
	}
	priv := ed25519.NewKeyFromSeed(blk.Bytes)
	return signer{priv, priv.Public().(ed25519.PublicKey)}, nil
}

// ReadPublicKey reads a checkpoint.pub file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || len(blk.Bytes) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: %s is not a checkpoint public key", path)
	}
	return ed25519.PublicKey(blk.Bytes), nil
}

// treeState is the compact Merkle range over record hashes: O(log n) memory.
type treeState struct {
	r *compact.Range
}

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

func newTree() *treeState { return &treeState{r: rangeFactory.NewEmptyRange(0)} }

func (t *treeState) append(recordHash []byte) {
	// Append only fails for a range not starting at 0, which this never is.
	_ = t.r.Append(rfc6962.DefaultHasher.HashLeaf(recordHash), nil)
}

func (t *treeState) root() []byte {
	if t.r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	root, _ := t.r.GetRootHash(nil)
	return root
}
