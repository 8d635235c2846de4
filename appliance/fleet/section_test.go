package fleet

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/conf/conftest"
	"github.com/patchgate/patchgate/tuf"
)

func TestParentValidate(t *testing.T) {
	good := func() Parent {
		p := DefaultParent()
		p.URL, p.Repositories, p.Roots = "https://hq.example:8080", []string{"vendor", "site"}, "/etc/patchgate/parent-roots"
		return p
	}
	tests := []conftest.Case[Parent]{
		{Name: "off", Edit: func(p *Parent) { *p = DefaultParent() }, Want: ""},
		{Name: "good", Edit: func(p *Parent) {}, Want: ""},
		{Name: "repositories without url", Edit: func(p *Parent) { p.URL = "" }, Want: "parent.url: must be set"},
		{Name: "url with a path", Edit: func(p *Parent) { p.URL = "https://hq.example/repos/vendor" }, Want: "parent.url: must be the parent's distribution listener"},
		{Name: "ftp", Edit: func(p *Parent) { p.URL = "ftp://hq.example" }, Want: "parent.url: must be"},
		{Name: "no repositories", Edit: func(p *Parent) { p.Repositories = nil }, Want: "parent.repositories: must name at least one"},
		{Name: "bad name", Edit: func(p *Parent) { p.Repositories = []string{"Vendor"} }, Want: "parent.repositories[0]: must be 1-63"},
		{Name: "twice", Edit: func(p *Parent) { p.Repositories = []string{"a", "a"} }, Want: `parent.repositories[1]: repository "a" listed twice`},
		{Name: "no roots", Edit: func(p *Parent) { p.Roots = "" }, Want: "parent.roots: must name the directory"},
		{Name: "check too often", Edit: func(p *Parent) { p.CheckEvery = conf.Duration(1) }, Want: "parent.check_every: must be between 10s and 24h"},
		{Name: "no skew allowed", Edit: func(p *Parent) { p.MaxSkew = 0 }, Want: "parent.max_skew: must be at least 1s"},
		{Name: "pinned", Edit: func(p *Parent) { p.Fingerprint = "sha256:" + strings.Repeat("Ab", 32) }, Want: ""},
		{Name: "bad fingerprint", Edit: func(p *Parent) { p.Fingerprint = "ab:cd" }, Want: `parent.fingerprint: must be a SHA-256 fingerprint (64 hex digits, colons allowed), got "ab:cd"`},
		{Name: "fingerprint over http", Edit: func(p *Parent) { p.URL, p.Fingerprint = "http://hq.example:8080", strings.Repeat("ab", 32) }, Want: "parent.url: must be https:// when parent.fingerprint or parent.ca_file is set"},
	}
	conftest.Run(t, "parent", good, tests, nil)

}

func TestParentFill(t *testing.T) {
	p := DefaultParent()
	p.URL, p.Repositories, p.Roots = "http://10.1.0.5:8080/", []string{"vendor"}, "/roots"
	repos := []tuf.Repository{{Name: "local"}}
	var egress []string
	p.Fill(&repos, &egress)
	want := []tuf.Repository{{Name: "local"}, {Name: "vendor", MetadataURL: "http://10.1.0.5:8080/repos/vendor/metadata",
		TargetsURL: "http://10.1.0.5:8080/repos/vendor/targets", Root: "/roots/vendor.root.json"}}
	if diff := cmp.Diff(want, repos); diff != "" {
		t.Errorf("repositories (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.1.0.5"}, egress); diff != "" {
		t.Errorf("egress (-want +got):\n%s", diff)
	}
	if !p.Serves(repos[1]) || p.Serves(repos[0]) {
		t.Error("Serves: want the parent's repository only")
	}
	p.Fill(&repos, nil) // no gateway: egress untouched
	off := DefaultParent()
	n := len(repos)
	off.Fill(&repos, &egress)
	if len(repos) != n || len(egress) != 1 {
		t.Error("a disabled parent section changed the config")
	}
}
