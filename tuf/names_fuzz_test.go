package tuf_test

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/tuf"
)

// FuzzParseTargetPath checks that no input panics, that an accepted path
// has no empty, "." or ".." segment, and that a split hash prefix is 64 or
// 128 lowercase hex digits whose removal leaves the rest of the name.
func FuzzParseTargetPath(f *testing.F) {
	for _, s := range []string{"a.bin", "dir/x/y.bin", "../x", "a//b", "", ".", strings.Repeat("a", 64) + ".fw.bin",
		"d/" + strings.Repeat("f", 128) + ".x", strings.Repeat("a", 64) + ".", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, err := tuf.ParseTargetPath(p)
		if err != nil {
			return
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ParseTargetPath(%q) accepted segment %q", p, seg)
			}
		}
		if n.Hash != "" {
			if len(n.Hash) != 64 && len(n.Hash) != 128 || strings.ToLower(n.Hash) != n.Hash {
				t.Fatalf("ParseTargetPath(%q) hash %q", p, n.Hash)
			}
			if strings.Replace(p, n.Hash+".", "", 1) != n.Path {
				t.Fatalf("ParseTargetPath(%q) = %+v: path is not the name without the prefix", p, n)
			}
		} else if n.Path != p {
			t.Fatalf("ParseTargetPath(%q) path %q", p, n.Path)
		}
	})
}

// FuzzParseMetadataName checks that no input panics and that an accepted
// name without leading zeros round-trips through String.
func FuzzParseMetadataName(f *testing.F) {
	for _, s := range []string{"root.json", "1.root.json", "007.targets.json", "timestamp.json", "2.timestamp.json",
		"a%2Fb.json", ".json", "1..json", "99999999999999999999.root.json", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := tuf.ParseMetadataName(s)
		if err != nil {
			return
		}
		if n.Role == "" || n.Version < 0 {
			t.Fatalf("ParseMetadataName(%q) = %+v", s, n)
		}
		if !strings.HasPrefix(s, "0") && n.String() != s {
			t.Fatalf("ParseMetadataName(%q).String() = %q", s, n.String())
		}
	})
}
