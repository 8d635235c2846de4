package tuf_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/tuf"
)

func info(data string, algs ...string) tuf.TargetInfo {
	t := tuf.TargetInfo{Path: "t.bin", Length: int64(len(data)), Hashes: map[string]tuf.HexBytes{}}
	for _, a := range algs {
		switch a {
		case "sha256":
			s := sha256.Sum256([]byte(data))
			t.Hashes[a] = s[:]
		case "sha512":
			s := sha512.Sum512([]byte(data))
			t.Hashes[a] = s[:]
		default:
			t.Hashes[a] = []byte{1, 2, 3}
		}
	}
	return t
}

func TestVerifier(t *testing.T) {
	const good = "the genuine bytes"
	tests := []struct {
		name      string
		info      tuf.TargetInfo
		stream    string
		wantWrite error // from copying the stream with a limit of length+1
		wantErr   error // from Verify
	}{
		{"exact, both hashes", info(good, "sha256", "sha512"), good, nil, nil},
		{"exact, sha512 only", info(good, "sha512"), good, nil, nil},
		{"unknown algorithm ignored", info(good, "sha256", "blake3"), good, nil, nil},
		{"short", info(good, "sha256"), good[:5], nil, tuf.ErrTooShort},
		{"long", info(good, "sha256"), good + "X", tuf.ErrTooLong, nil},
		{"endless", info(good, "sha256"), good + strings.Repeat("X", 1<<20), tuf.ErrTooLong, nil},
		{"same length, other bytes", info(good, "sha256", "sha512"), strings.ToUpper(good), nil, tuf.ErrHashMismatch},
		{"sha512 differs", func() tuf.TargetInfo {
			i := info(good, "sha256", "sha512")
			i.Hashes["sha512"] = make([]byte, 64)
			return i
		}(), good, nil, tuf.ErrHashMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tuf.NewVerifier(tc.info)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			n, err := io.Copy(v, io.LimitReader(strings.NewReader(tc.stream), tc.info.Length+1))
			if !errors.Is(err, tc.wantWrite) {
				t.Fatalf("copy: err = %v, want %v", err, tc.wantWrite)
			}
			if v.Written() > tc.info.Length || n > tc.info.Length {
				t.Errorf("accepted %d bytes (copy %d) of a %d-byte target", v.Written(), n, tc.info.Length)
			}
			if tc.wantWrite != nil {
				return
			}
			if err := v.Verify(); !errors.Is(err, tc.wantErr) {
				t.Errorf("Verify = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				s := sha256.Sum256([]byte(good))
				if v.Sum256() != tuf.HexBytes(s[:]).String() {
					t.Errorf("Sum256 = %s", v.Sum256())
				}
			}
		})
	}
	if _, err := tuf.NewVerifier(info(good, "md5")); !errors.Is(err, tuf.ErrNoSupportedHash) {
		t.Errorf("NewVerifier with only md5: err = %v, want ErrNoSupportedHash", err)
	}
}
