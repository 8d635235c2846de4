package tuf

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNameLength bounds role names and target paths this package accepts.
const MaxNameLength = 1024

// MetadataName is a parsed metadata file name such as "3.root.json".
type MetadataName struct {
	// Role is the role name ("root", "timestamp", "snapshot", "targets" or a
	// delegated role).
	Role string
	// Version is the version prefix, or 0 when the name has none.
	Version int64
}

// String returns the file name n was parsed from.
func (n MetadataName) String() string {
	if n.Version == 0 {
		return n.Role + ".json"
	}
	return strconv.FormatInt(n.Version, 10) + "." + n.Role + ".json"
}

// ParseMetadataName parses a metadata file name, already URL-unescaped:
// "ROLE.json" or "VERSION.ROLE.json". It rejects empty or oversized roles,
// control characters, and a versioned timestamp (TUF never versions it).
func ParseMetadataName(name string) (MetadataName, error) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return MetadataName{}, fmt.Errorf("tuf: metadata name %q: want ROLE.json or VERSION.ROLE.json", name)
	}
	var n MetadataName
	if i := strings.IndexByte(base, '.'); i > 0 && allDigits(base[:i]) {
		v, err := strconv.ParseInt(base[:i], 10, 64)
		if err != nil || v < 1 {
			return MetadataName{}, fmt.Errorf("tuf: metadata name %q: bad version %q", name, base[:i])
		}
		n.Version = v
		base = base[i+1:]
	}
	if err := checkName(base); err != nil {
		return MetadataName{}, fmt.Errorf("tuf: metadata name %q: role %w", name, err)
	}
	n.Role = base
	if n.Role == "timestamp" && n.Version != 0 {
		return MetadataName{}, fmt.Errorf("tuf: metadata name %q: timestamp is never versioned", name)
	}
	return n, nil
}

// TargetName is a parsed target request path.
type TargetName struct {
	// Path is the target path without any hash prefix.
	Path string
	// Hash is the hex digest of a consistent-snapshot prefix
	// ("dir/HASH.name"), or "" when the request had none.
	Hash string
}

// ParseTargetPath parses a requested target path, already URL-unescaped. It
// rejects empty, absolute or dot-dot paths, empty segments and control
// characters. A base name "HEX.rest" whose HEX is a sha256 or sha512 digest
// (64 or 128 lowercase hex digits) is split into Hash and Path; callers should
// look the full path up first, since a target may legitimately be named so.
func ParseTargetPath(p string) (TargetName, error) {
	if err := checkName(p); err != nil {
		return TargetName{}, fmt.Errorf("tuf: target path %q: %w", p, err)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return TargetName{}, fmt.Errorf("tuf: target path %q: empty, . or .. segment", p)
		}
	}
	dir, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i+1], p[i+1:]
	}
	if i := strings.IndexByte(base, '.'); (i == 64 || i == 128) && i+1 < len(base) && isLowerHex(base[:i]) {
		return TargetName{Path: dir + base[i+1:], Hash: base[:i]}, nil
	}
	return TargetName{Path: p}, nil
}

// hashPrefixed returns the consistent-snapshot name of path for a digest.
func hashPrefixed(path string, digest []byte) string {
	dir, base := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, base = path[:i+1], path[i+1:]
	}
	return dir + hex.EncodeToString(digest) + "." + base
}

func checkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > MaxNameLength:
		return fmt.Errorf("is longer than %d bytes", MaxNameLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("has a control character")
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
