package tuf

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// HexBytes is a hash digest as raw bytes; it prints as lowercase hex.
type HexBytes []byte

// String returns b as lowercase hex.
func (b HexBytes) String() string { return hex.EncodeToString(b) }

// TargetInfo is what verified metadata says of one target file.
type TargetInfo struct {
	// Path is the target path as listed in the metadata (no hash prefix).
	Path string
	// Length is the exact length in bytes.
	Length int64
	// Hashes maps algorithm names ("sha256", "sha512", ...) to digests.
	Hashes map[string]HexBytes
	// Custom is the target's opaque custom field, if any.
	Custom json.RawMessage
	// Role is the name of the targets role that listed the target.
	Role string
}

// SHA256 returns the target's sha256 digest as lowercase hex, if listed.
func (t TargetInfo) SHA256() (string, bool) {
	h, ok := t.Hashes["sha256"]
	if !ok || len(h) != sha256.Size {
		return "", false
	}
	return hex.EncodeToString(h), true
}

// SupportedHashes lists the hash algorithms a [Verifier] checks.
var SupportedHashes = []string{"sha256", "sha512"}

// Errors a Verifier reports; test with errors.Is.
var (
	// ErrTooLong means more bytes arrived than the metadata's length.
	ErrTooLong = errors.New("more bytes than the verified length")
	// ErrTooShort means fewer bytes arrived than the metadata's length.
	ErrTooShort = errors.New("fewer bytes than the verified length")
	// ErrHashMismatch means a digest differs from the metadata's.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrNoSupportedHash means the metadata lists no hash this package checks.
	ErrNoSupportedHash = errors.New("no supported hash listed")
)

// Verifier checks a stream of target bytes against a [TargetInfo]: it hashes
// with every listed supported algorithm (and always sha256, the store key),
// and refuses any byte beyond the expected length. Write it the bytes in
// order, then call Verify. A Verifier is not safe for concurrent use.
type Verifier struct {
	info    TargetInfo
	written int64
	sha256  hash.Hash
	sha512  hash.Hash
	algs    []string
}

// NewVerifier returns a Verifier for t. It fails if t lists no supported hash
// or has a negative length.
func NewVerifier(t TargetInfo) (*Verifier, error) {
	if t.Length < 0 {
		return nil, fmt.Errorf("tuf: verify %s: negative length %d", t.Path, t.Length)
	}
	v := &Verifier{info: t, sha256: sha256.New()}
	for alg := range t.Hashes {
		if slices.Contains(SupportedHashes, alg) {
			v.algs = append(v.algs, alg)
		}
	}
	if len(v.algs) == 0 {
		return nil, fmt.Errorf("tuf: verify %s: %w (have %v, want one of %v)", t.Path, ErrNoSupportedHash, sortedKeys(t.Hashes), SupportedHashes)
	}
	slices.Sort(v.algs)
	if slices.Contains(v.algs, "sha512") {
		v.sha512 = sha512.New()
	}
	return v, nil
}

// Write hashes p. It accepts bytes up to the expected length; if p would go
// past it, Write consumes nothing beyond it and returns [ErrTooLong], so a
// caller copying with a limit of expected+1 bytes stops at the first extra
// byte.
func (v *Verifier) Write(p []byte) (int, error) {
	rest := v.info.Length - v.written
	n := len(p)
	var err error
	if int64(n) > rest {
		n = int(rest)
		err = fmt.Errorf("tuf: verify %s: %w (%d)", v.info.Path, ErrTooLong, v.info.Length)
	}
	v.sha256.Write(p[:n])
	if v.sha512 != nil {
		v.sha512.Write(p[:n])
	}
	v.written += int64(n)
	return n, err
}

// Written returns how many bytes were accepted.
func (v *Verifier) Written() int64 { return v.written }

// Verify reports whether exactly the expected bytes were written: the exact
// length and every listed supported hash.
func (v *Verifier) Verify() error {
	if v.written < v.info.Length {
		return fmt.Errorf("tuf: verify %s: %w (got %d of %d)", v.info.Path, ErrTooShort, v.written, v.info.Length)
	}
	for _, alg := range v.algs {
		var got []byte
		switch alg {
		case "sha256":
			got = v.sha256.Sum(nil)
		case "sha512":
			got = v.sha512.Sum(nil)
		}
		if subtle.ConstantTimeCompare(got, v.info.Hashes[alg]) != 1 {
			return fmt.Errorf("tuf: verify %s: %w (%s)", v.info.Path, ErrHashMismatch, alg)
		}
	}
	return nil
}

// Sum256 returns the sha256 of the bytes written so far, as lowercase hex.
// After a successful Verify it is the content address of the target.
func (v *Verifier) Sum256() string { return hex.EncodeToString(v.sha256.Sum(nil)) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
