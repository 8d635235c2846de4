package advisory

import (
	"errors"
	"strings"
	"testing"
)

func TestVersContains(t *testing.T) {
	tests := []struct {
		name, vers, version string
		want                bool
		err                 string
	}{
		{"deb inside", "vers:deb/>=1.2.0|<1.4.3", "1.3.0-2", true, ""},
		{"deb at the upper bound", "vers:deb/>=1.2.0|<1.4.3", "1.4.3", false, ""},
		{"deb at the lower bound", "vers:deb/>=1.2.0|<1.4.3", "1.2.0", true, ""},
		{"deb below", "vers:deb/>=1.2.0|<1.4.3", "1.1.9", false, ""},
		{"deb tilde before release", "vers:deb/<3.0.15-1~deb12u1", "3.0.15-1~deb11u1", true, ""},
		{"deb epoch", "vers:deb/<2.0", "1:1.0", false, ""},
		{"deb constraints in any order", "vers:deb/<1.4.3|>=1.2.0", "1.3", true, ""},
		{"two intervals, first", "vers:generic/>=1.0|<1.5|>=2.0|<2.5", "1.2", true, ""},
		{"two intervals, gap", "vers:generic/>=1.0|<1.5|>=2.0|<2.5", "1.7", false, ""},
		{"two intervals, second", "vers:generic/>=1.0|<1.5|>=2.0|<2.5", "2.4.9", true, ""},
		{"open below and above", "vers:generic/<1.0|>=2.0", "2.1", true, ""},
		{"open below and above, gap", "vers:generic/<1.0|>=2.0", "1.5", false, ""},
		{"single greater-than", "vers:generic/>3.1", "3.10", true, ""},
		{"exact version", "vers:generic/1.2|1.4", "1.4", true, ""},
		{"exact versions only, not listed", "vers:generic/1.2|1.4", "1.3", false, ""},
		{"excluded version", "vers:generic/>=1.0|!=1.2|<2.0", "1.2", false, ""},
		{"excluded version, another", "vers:generic/>=1.0|!=1.2|<2.0", "1.3", true, ""},
		{"only exclusions", "vers:generic/!=1.2", "1.3", true, ""},
		{"star", "vers:semver/*", "anything", true, ""},
		{"semver pre-release below release", "vers:semver/<2.0.0", "2.0.0-rc.1", true, ""},
		{"semver build ignored", "vers:semver/<=1.2.3", "1.2.3+build.7", true, ""},
		{"semver numeric prerelease order", "vers:semver/>=1.0.0-alpha.10", "1.0.0-alpha.9", false, ""},
		{"golang with v", "vers:golang/>=v0.1.0|<v0.17.0", "v0.15.0", true, ""},
		{"percent-encoded version", "vers:generic/<1.0%2Bsp2", "1.0", true, ""},
		{"spaces ignored", "vers:deb/ >= 1.0 | < 2.0 ", "1.5", true, ""},
		{"semver version not semver", "vers:semver/<2.0.0", "2.0", false, "not a semantic version"},
		{"semver range not semver", "vers:npm/<2.x", "1.0.0", false, "not a semantic version"},
		{"unknown scheme", "vers:conan/<2.0", "1.0", false, "versioning scheme not supported"},
		{"no prefix", ">=1.0", "1.0", false, `want "vers:`},
		{"no constraints", "vers:deb/", "1.0", false, "no constraints"},
		{"upper-case scheme", "vers:DEB/1.0", "1.0", false, "lowercase versioning scheme"},
		{"star among others", "vers:deb/*|1.0", "1.0", false, "must be the only"},
		{"empty version", "vers:deb/>=|<2", "1.0", false, "constraint 1: no version"},
		{"unknown comparator", "vers:deb/=>1.0", "1.0", false, "comparator"},
		{"duplicate version", "vers:deb/>=1.0|<1.0", "1.0", false, "listed twice"},
		{"bad escape", "vers:deb/<1%zz", "1.0", false, "constraint 1"},
		{"too long", "vers:deb/" + strings.Repeat("1", 5000), "1", false, "longer than"},
		{"rpm inside", "vers:rpm/>=3.0.7-1.el9|<3.0.7-25.el9", "3.0.7-24.el9", true, ""},
		{"rpm fixed", "vers:rpm/>=3.0.7-1.el9|<3.0.7-25.el9", "1:3.0.7-25.el9", false, ""},
		{"rpm epoch above the range", "vers:rpm/<3.0.7-25.el9", "1:3.0.7-1.el9", false, ""},
		{"rpm pre-release below the release", "vers:rpm/<2.0", "2.0~rc1", true, ""},
		{"rpm no release matches any", "vers:rpm/<=2.0", "2.0-7.el9", true, ""},
		{"rpm bad epoch", "vers:rpm/<2.0", "x:1.0", false, "epoch"},
		{"pypi inside", "vers:pypi/>=2.0|<2.31.0", "2.28.2", true, ""},
		{"pypi pre-release of the fix", "vers:pypi/<2.31.0", "2.31.0rc1", true, ""},
		{"pypi post-release of the fix", "vers:pypi/<2.31.0", "2.31.0.post1", false, ""},
		{"pypi local version", "vers:pypi/<=1.0", "1.0+ubuntu1", false, ""},
		{"pypi not PEP 440", "vers:pypi/<2.0", "1.0-beta-final", false, "not a PEP 440 version"},
		{"pypi range not PEP 440", "vers:pypi/<2.x", "1.0", false, "not a PEP 440 version"},
		{"maven inside", "vers:maven/>=2.0-beta9|<2.15.0", "2.14.1", true, ""},
		{"maven release candidate of the fix", "vers:maven/<2.15.0", "2.15.0-rc1", true, ""},
		{"maven snapshot below its release", "vers:maven/<2.15.0", "2.15.0-SNAPSHOT", true, ""},
		{"maven service pack above", "vers:maven/<=2.15.0", "2.15.0-sp1", false, ""},
		{"unknown scheme names the supported ones", "vers:conan/<2.0", "1.0", false, "maven, npm, pypi, rpm, semver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := versContains(tt.vers, tt.version)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("versContains(%q, %q) = %v, %v; want an error containing %q", tt.vers, tt.version, got, err, tt.err)
				}
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrVersScheme) {
					t.Errorf("error %v is neither ErrInvalid nor ErrVersScheme", err)
				}
				if m, amb, why := inRange(tt.vers, tt.version); !m || !amb || !strings.Contains(why, tt.err) {
					t.Errorf("inRange = %v, %v, %q; want ambiguous with the reason", m, amb, why)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("versContains(%q, %q) = %v, %v; want %v", tt.vers, tt.version, got, err, tt.want)
			}
		})
	}
}

func TestCompareSemver(t *testing.T) {
	// semver.org §11's example order, each below the next.
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"}
	groups := make([][]string, len(order))
	for i, v := range order {
		groups[i] = []string{v}
	}
	checkOrder(t, compareSemver, groups)
	for _, bad := range []string{"1.0", "01.0.0", "1.0.0-", "1.0.0-a..b", "a.b.c", ""} {
		if _, err := compareSemver(bad, "1.0.0"); !errors.Is(err, ErrInvalid) {
			t.Errorf("compareSemver(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzParseVers: any string parses or is an ErrInvalid; what parses prints back to a
// range that parses the same, and Contains never panics for any version.
func FuzzParseVers(f *testing.F) {
	f.Add("vers:deb/>=1.2.0|<1.4.3", "1.3")
	f.Add("vers:semver/>=1.0.0-alpha|!=1.0.1|<2.0.0", "1.0.0")
	f.Add("vers:generic/*", "x")
	f.Add("vers:golang/<v1.2.3%2Bincompatible", "v1.0.0")
	f.Add("vers:rpm/>=1:1.0~rc1^git1-2.el9|<2.0", "1:1.0-3.el9")
	f.Add("vers:pypi/>=1!1.0a1.post1.dev2+ubuntu.1|<2.0rc1", "1.0.post1")
	f.Add("vers:maven/>=1.0-alpha-1|<1.0-SNAPSHOT|!=1-sp2", "1.0-rc2")
	f.Fuzz(func(t *testing.T, s, v string) {
		r, err := ParseVers(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(r.Constraints) == 0 {
			t.Fatalf("ParseVers(%q) accepted no constraints", s)
		}
		again, err := ParseVers(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("ParseVers(%q).String() = %q reparses as %q, %v", s, r.String(), again.String(), err)
		}
		for _, scheme := range []string{r.Scheme, "deb", "semver", "generic", "golang", "rpm", "pypi", "maven"} {
			r.Scheme = scheme
			if _, err := r.Contains(v); err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrVersScheme) {
				t.Fatalf("Contains(%q) error %v", v, err)
			}
		}
	})
}

// TestCSAFVersionRange: a CSAF product_version_range branch with a purl helper is
// decided against an agent's packages, and against a device's firmware.
func TestCSAFVersionRange(t *testing.T) {
	doc := `{"document":{"csaf_version":"2.0","tracking":{"id":"DEB-1"}},"product_tree":{"branches":[
 {"category":"vendor","name":"Debian","branches":[{"category":"product_name","name":"openssl","branches":[
  {"category":"product_version_range","name":"vers:deb/>=3.0.0|<3.0.15-1~deb12u1","product":{"product_id":"O","name":"openssl before 3.0.15-1~deb12u1",
   "product_identification_helper":{"purl":"pkg:deb/debian/openssl"}}}]}]},
 {"category":"vendor","name":"Zebra","branches":[{"category":"product_name","name":"ZT410","branches":[
  {"category":"product_version_range","name":"vers:generic/<V75.20.02Z","product":{"product_id":"Z","name":"ZT410 before V75.20.02Z"}}]}]}]},
 "vulnerabilities":[{"cve":"CVE-2026-0001","product_status":{"known_affected":["O","Z"]}}]}`
	advs, err := ParseCSAF(strings.NewReader(doc), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		a         Asset
		matched   bool
		ambiguous bool
	}{
		{"package inside", Asset{ID: "ws", Ecosystem: "Debian:12", Packages: []Package{{"openssl", "3.0.11-1~deb12u2"}}}, true, false},
		{"package fixed", Asset{ID: "ws", Ecosystem: "Debian:12", Packages: []Package{{"openssl", "3.0.15-1~deb12u1"}}}, false, false},
		{"firmware inside", Asset{ID: "p", Vendor: "Zebra", Model: "ZT410", Firmware: "V75.20.01Z"}, true, false},
		{"firmware fixed", Asset{ID: "p", Vendor: "Zebra", Model: "ZT410", Firmware: "V75.20.02Z"}, false, false},
		{"firmware unknown", Asset{ID: "p", Vendor: "Zebra", Model: "ZT410"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := MatchAll([]Asset{tt.a}, Corpus{"deb": Data{Advisories: advs}})
			if len(ms) != b2i(tt.matched) || (tt.matched && ms[0].Ambiguous != tt.ambiguous) {
				t.Errorf("matches = %+v; want matched %v, ambiguous %v", ms, tt.matched, tt.ambiguous)
			}
		})
	}
}
