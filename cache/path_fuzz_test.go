package cache_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf"
)

// FuzzParseRequestPath checks, for any escaped request path: no panic; a
// target path accepted has no empty, "." or ".." segment and no control
// character; a metadata name accepted parses with tuf.ParseMetadataName and
// round-trips through its String; and re-escaping an accepted target path
// parses back to the same request.
func FuzzParseRequestPath(f *testing.F) {
	for _, s := range []string{
		"/repos/demo/metadata/root.json",
		"/repos/demo/metadata/3.root.json",
		"/repos/demo/metadata/vendor%2Fprinters.json",
		"/repos/demo/metadata/12.snapshot.json",
		"/repos/demo/metadata/7.timestamp.json",
		"/repos/demo/targets/a.bin",
		"/repos/demo/targets/dir/sub/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.fw.bin",
		"/repos/demo/targets/dir/%2e%2e/x",
		"/repos/demo/targets/a%2Fb",
		"/repos/demo/targets//x",
		"/repos//targets/x",
		"/repos/de%00mo/targets/x",
		"/repos/demo/targets/%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req, err := cache.ParseRequestPath(p)
		if err != nil {
			return
		}
		switch req.Kind {
		case cache.KindTarget:
			for _, seg := range strings.Split(req.Name, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("ParseRequestPath(%q) accepted target %q with segment %q", p, req.Name, seg)
				}
			}
			if strings.ContainsFunc(req.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("ParseRequestPath(%q) accepted a control character", p)
			}
			segs := strings.Split(req.Name, "/")
			for i, s := range segs {
				segs[i] = url.PathEscape(s)
			}
			again, err := cache.ParseRequestPath("/repos/" + url.PathEscape(req.Repo) + "/targets/" + strings.Join(segs, "/"))
			if err != nil || again != req {
				t.Fatalf("round trip of %+v = %+v, %v", req, again, err)
			}
		case cache.KindMetadata:
			n, err := tuf.ParseMetadataName(req.Name)
			if err != nil {
				t.Fatalf("ParseRequestPath(%q) accepted metadata %q that tuf rejects: %v", p, req.Name, err)
			}
			if n.String() != req.Name && !strings.HasPrefix(req.Name, "0") {
				t.Fatalf("metadata name %q round-trips to %q", req.Name, n.String())
			}
		default:
			t.Fatalf("ParseRequestPath(%q): kind %d", p, req.Kind)
		}
	})
}
