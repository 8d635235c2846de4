package tuftest

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
)

// Content is the bytes of a target: small ones in memory, large ones
// generated on the fly so tests need no big fixtures.
type Content interface {
	Size() int64
	// Open returns a fresh reader over the whole content.
	Open() io.ReadSeeker
}

// Bytes is in-memory Content.
type Bytes []byte

// Size implements Content.
func (b Bytes) Size() int64 { return int64(len(b)) }

// Open implements Content.
func (b Bytes) Open() io.ReadSeeker { return bytes.NewReader(b) }

const genBlock = 1 << 16

// Generated is deterministic pseudo-random Content of any length, produced
// block by block with copies only (fast even under -race).
type Generated struct {
	length int64
	base   []byte // 2*genBlock random bytes
}

// NewGenerated returns Content of length bytes derived from seed.
func NewGenerated(length int64, seed uint64) *Generated {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := make([]byte, 2*genBlock)
	for i := range base {
		base[i] = byte(rng.Uint32())
	}
	return &Generated{length: length, base: base}
}

// Size implements Content.
func (g *Generated) Size() int64 { return g.length }

// Open implements Content.
func (g *Generated) Open() io.ReadSeeker { return io.NewSectionReader(g, 0, g.length) }

// ReadAt fills p with the content at off. Block i is the base window
// starting at (i*7919) mod 64 KiB, so neighbouring blocks differ.
func (g *Generated) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("tuftest: negative offset")
	}
	if off >= g.length {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < g.length {
		blk, in := off/genBlock, off%genBlock
		start := (blk * 7919) % genBlock
		chunk := min(int64(len(p)-n), genBlock-in, g.length-off)
		copy(p[n:n+int(chunk)], g.base[start+in:start+in+chunk])
		n += int(chunk)
		off += chunk
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// hashContent returns the length and digests of c for the named algorithms.
func hashContent(c Content, algs []string) (int64, map[string][]byte, error) {
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		switch a {
		case "sha256":
			hs[i] = sha256.New()
		case "sha512":
			hs[i] = sha512.New()
		default:
			return 0, nil, errors.New("tuftest: unsupported hash " + a)
		}
		ws[i] = hs[i]
	}
	n, err := io.CopyBuffer(io.MultiWriter(ws...), c.Open(), make([]byte, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	out := map[string][]byte{}
	for i, a := range algs {
		out[a] = hs[i].Sum(nil)
	}
	return n, out, nil
}
