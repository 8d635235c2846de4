package advisory

import (
	"errors"
	"testing"
)

// checkOrder checks cmp over groups of versions: the versions of a group are equal,
// each group below the next; every pair is compared both ways.
func checkOrder(t *testing.T, cmp func(a, b string) (int, error), groups [][]string) {
	t.Helper()
	for i, gi := range groups {
		for j, gj := range groups {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			for _, a := range gi {
				for _, b := range gj {
					if n, err := cmp(a, b); err != nil || n != want {
						t.Errorf("compare(%q, %q) = %d, %v; want %d", a, b, n, err, want)
					}
				}
			}
		}
	}
}

// TestVersSchemeOrder: known orderings from each scheme's own specification and
// tests, each group below the next, the versions of a group equal.
func TestVersSchemeOrder(t *testing.T) {
	tests := []struct {
		name   string
		cmp    func(a, b string) (int, error)
		groups [][]string
	}{
		// rpm's rpmvercmp.at.
		{"rpm numbers and letters", compareRPM, [][]string{{"1.0"}, {"1.0a"}, {"1.0aa"}, {"1.0b"}, {"1.1"}, {"2.0"}, {"2.0.1"}, {"2.0.1a"}, {"10"}}},
		{"rpm separators", compareRPM, [][]string{{"1.0", "1_0", "1+0"}, {"1.0.1", "1..0.1"}}},
		{"rpm letters below numbers", compareRPM, [][]string{{"xyz.4"}, {"8"}, {"8.1"}}},
		{"rpm p-releases", compareRPM, [][]string{{"5.5p1"}, {"5.5p2"}, {"5.5p10"}}},
		{"rpm leading zeros", compareRPM, [][]string{{"1.01", "1.001", "1.1"}, {"1.2"}}},
		{"rpm tilde", compareRPM, [][]string{{"1.0~rc1~git123"}, {"1.0~rc1"}, {"1.0~rc2"}, {"1.0"}, {"1.0.1"}}},
		{"rpm caret", compareRPM, [][]string{{"1.0~rc1"}, {"1.0~rc1^git1"}, {"1.0"}, {"1.0^"}, {"1.0^git1~pre"}, {"1.0^git1"}, {"1.0^20160101"}, {"1.0^20160101^git1"}, {"1.0.1"}, {"1.01.1"}}},
		{"rpm release", compareRPM, [][]string{{"1.0-1.el9"}, {"1.0-2.el9"}, {"1.0-10.el9"}, {"1.1-1.el8"}}},
		{"rpm epoch", compareRPM, [][]string{{"2.0", "0:2.0"}, {"3.0"}, {"1:1.0"}, {"2:0.1"}}},
		// PEP 440's summary of permitted suffixes and relative ordering.
		{"pypi suffixes", comparePEP440, [][]string{{"1.dev0", "1.0.dev0"}, {"1.0.dev456"}, {"1.0a1"}, {"1.0a2.dev456"}, {"1.0a12.dev456"}, {"1.0a12"},
			{"1.0b1.dev456"}, {"1.0b2"}, {"1.0b2.post345.dev456"}, {"1.0b2.post345"}, {"1.0rc1.dev456"}, {"1.0rc1", "1.0c1"}, {"1.0", "1.0.0"},
			{"1.0+abc.5"}, {"1.0+abc.7"}, {"1.0+5"}, {"1.0.post456.dev34"}, {"1.0.post456"}, {"1.0.15"}, {"1.1.dev1"}}},
		{"pypi spellings", comparePEP440, [][]string{{"1.0alpha1", "1.0-a1", "1.0.a.1", "1.0A1"}, {"1.0beta2", "1.0b2"}, {"1.0pre1", "1.0preview1", "1.0rc1"},
			{"v1.0", "1.0"}, {"1.0-1", "1.0.post1", "1.0-r1", "1.0rev1", "1.0post1"}, {"1.0.post2"}}},
		{"pypi epoch", comparePEP440, [][]string{{"2013.10"}, {"2014.04"}, {"1!1.0", "1!1.0.0"}, {"1!1.1"}, {"2!0.1"}}},
		// maven's ComparableVersionTest (VERSIONS_QUALIFIER, VERSIONS_NUMBER, equalities).
		{"maven qualifiers", compareMaven, [][]string{{"1-alpha2snapshot"}, {"1-alpha2"}, {"1-alpha-123"}, {"1-beta-2"}, {"1-beta123"}, {"1-m2"}, {"1-m11"},
			{"1-rc", "1-cr"}, {"1-cr2", "1-rc2"}, {"1-rc123"}, {"1-SNAPSHOT"}, {"1", "1.0", "1.0.0", "1-0", "1.0-0", "1ga", "1-final", "1release"},
			{"1-sp"}, {"1-sp2"}, {"1-sp123"}, {"1-abc"}, {"1-def"}, {"1-pom-1"}, {"1-1-snapshot"}, {"1-1"}, {"1-2"}, {"1-123"}}},
		{"maven numbers", compareMaven, [][]string{{"2.0"}, {"2-1"}, {"2.0.a"}, {"2.0.0.a"}, {"2.0.2"}, {"2.0.123"}, {"2.1.0"}, {"2.1-a"}, {"2.1b"},
			{"2.1-c"}, {"2.1-1"}, {"2.1.0.1"}, {"2.2"}, {"2.123"}, {"11.a2"}, {"11.a11"}, {"11.b2"}, {"11.b11"}, {"11.m2"}, {"11.m11"}, {"11"},
			{"11.a"}, {"11b"}, {"11c"}, {"11m"}}},
		{"maven spellings", compareMaven, [][]string{{"1a1", "1-alpha-1", "1A1"}, {"1b2", "1-beta-2"}, {"1m3", "1-milestone-3"}, {"1a", "1-a", "1.0-a", "1.0.0-a", "1.0a", "1A"},
			{"1x", "1-x", "1.0-x", "1.0x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOrder(t, tt.cmp, tt.groups) })
	}
}

// FuzzVersSchemeCompare: the rpm, pypi and maven comparisons never panic, read a
// version or refuse it as ErrInvalid, and are antisymmetric.
func FuzzVersSchemeCompare(f *testing.F) {
	f.Add("1:1.0~rc1^git1-2.el9", "1.0-3")
	f.Add("1!1.0a1.post1.dev2+ubuntu.1", "1.0.post1")
	f.Add("1.0-alpha-1", "1-SNAPSHOT")
	f.Fuzz(func(t *testing.T, a, b string) {
		for name, cmp := range map[string]func(a, b string) (int, error){"rpm": compareRPM, "pypi": comparePEP440, "maven": compareMaven} {
			ab, err1 := cmp(a, b)
			ba, err2 := cmp(b, a)
			if (err1 != nil && !errors.Is(err1, ErrInvalid)) || (err2 != nil && !errors.Is(err2, ErrInvalid)) {
				t.Fatalf("%s: errors %v, %v are not ErrInvalid", name, err1, err2)
			}
			if err1 == nil && err2 == nil && ab != -ba {
				t.Fatalf("%s: compare(%q, %q) = %d but compare(%q, %q) = %d", name, a, b, ab, b, a, ba)
			}
			if n, err := cmp(a, a); err == nil && n != 0 {
				t.Fatalf("%s: compare(%q, %q) = %d", name, a, a, n)
			}
		}
	})
}
