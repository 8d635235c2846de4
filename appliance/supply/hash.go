package supply

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
)

// hashWriter writes through to w while hashing with sha256 and sha512.
type hashWriter struct {
	w          io.Writer
	h256, h512 hash.Hash
}

func newHashWriter(w io.Writer) *hashWriter {
	return &hashWriter{w: w, h256: sha256.New(), h512: sha512.New()}
}

func (h *hashWriter) Write(b []byte) (int, error) {
	n, err := h.w.Write(b)
	h.h256.Write(b[:n])
	h.h512.Write(b[:n])
	return n, err
}

func (h *hashWriter) sum256() string { return hex.EncodeToString(h.h256.Sum(nil)) }
func (h *hashWriter) sum512() string { return hex.EncodeToString(h.h512.Sum(nil)) }
