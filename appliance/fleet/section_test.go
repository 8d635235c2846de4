package fleet

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

func TestParentValidate(t *testing.T) {
	good := func() Parent {
		p := DefaultParent()
		p.URL, p.Repositories, p.Roots = "https://hq.example:8080", []string{"vendor", "site"}, "/etc/patchgate/parent-roots"
		return p
	}
	tests := []struct {
		name string
		mod  func(*Parent)
		want string // "" for no problem
	}{
		{"off", func(p *Parent) { *p = DefaultParent() }, ""},
		{"good", func(p *Parent) {}, ""},
		{"repositories without url", func(p *Parent) { p.URL = "" }, "parent.url: must be set"},
		{"url with a path", func(p *Parent) { p.URL = "https://hq.example/repos/vendor" }, "parent.url: must be the parent's distribution listener"},
		{"ftp", func(p *Parent) { p.URL = "ftp://hq.example" }, "parent.url: must be"},
		{"no repositories", func(p *Parent) { p.Repositories = nil }, "parent.repositories: must name at least one"},
		{"bad name", func(p *Parent) { p.Repositories = []string{"Vendor"} }, "parent.repositories[0]: must be 1-63"},
		{"twice", func(p *Parent) { p.Repositories = []string{"a", "a"} }, `parent.repositories[1]: repository "a" listed twice`},
		{"no roots", func(p *Parent) { p.Roots = "" }, "parent.roots: must name the directory"},
		{"check too often", func(p *Parent) { p.CheckEvery = conf.Duration(1) }, "parent.check_every: must be between 10s and 24h"},
		{"no skew allowed", func(p *Parent) { p.MaxSkew = 0 }, "parent.max_skew: must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.mod(&p)
			var ps conf.Problems
			p.Validate("parent", &ps)
			got := ""
			for _, pr := range ps {
				got += pr.Key + ": " + pr.Msg + "\n"
			}
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant %q", got, tt.want)
			}
		})
	}
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
