package advisory

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A version range specifier (purl-spec VERSION-RANGE-SPEC, "vers"), as CSAF
// product_version_range branches carry: vers:<scheme>/<constraint>|<constraint>|…,
// each constraint a comparator (=, !=, <, <=, >, >=; none is =) and a version, or "*"
// for every version.

// Bounds of a vers string: a longer one is refused as malformed.
const (
	maxVersLen         = 4096
	maxVersConstraints = 256
)

// ErrVersScheme is returned by Contains for a versioning scheme the appliance cannot
// compare: the match stays ambiguous, with this reason.
var ErrVersScheme = errors.New("versioning scheme not supported")

// VersConstraint is one constraint of a vers range.
type VersConstraint struct {
	Op      string // "*", "=", "!=", "<", "<=", ">", ">="
	Version string
}

// VersRange is a parsed vers range.
type VersRange struct {
	Scheme      string
	Constraints []VersConstraint
}

// versSchemes are the schemes Contains compares, with their comparison and version
// check: semver-like ones by semantic versioning precedence (golang's with its "v"),
// deb by dpkg's rules, generic by CompareVersions (dotted numbers and letters), rpm
// by rpmvercmp, pypi by PEP 440, maven by ComparableVersion (vers_schemes.go).
var versSchemes = map[string]func(a, b string) (int, error){
	"rpm":    compareRPM,
	"pypi":   comparePEP440,
	"maven":  compareMaven,
	"semver": compareSemver,
	"npm":    compareSemver,
	"golang": func(a, b string) (int, error) {
		return compareSemver(strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v"))
	},
	"deb":     anyVersion,
	"generic": anyVersion,
}

func anyVersion(a, b string) (int, error) { return CompareVersions(a, b), nil }

// ParseVers parses a vers range. Spaces are ignored, versions are percent-decoded,
// and a malformed range (no "vers:" scheme, an empty or unknown comparator, an empty
// version, "*" among other constraints, a version listed twice, beyond 4096
// characters or 256 constraints) is an ErrInvalid quoting it. The scheme need not be
// one Contains supports.
func ParseVers(s string) (VersRange, error) {
	bad := func(format string, args ...any) (VersRange, error) {
		return VersRange{}, fmt.Errorf("vers: %w: %q: %s", ErrInvalid, clip(s), fmt.Sprintf(format, args...))
	}
	if len(s) > maxVersLen {
		return bad("longer than %d characters", maxVersLen)
	}
	v := strings.Join(strings.Fields(s), "")
	rest, ok := strings.CutPrefix(v, "vers:")
	if !ok {
		return bad(`want "vers:<scheme>/<constraints>"`)
	}
	scheme, cs, ok := strings.Cut(rest, "/")
	if !ok || scheme == "" || strings.Trim(scheme, "abcdefghijklmnopqrstuvwxyz0123456789.+-") != "" {
		return bad("want a lowercase versioning scheme before '/'")
	}
	cs = strings.Trim(cs, "|")
	if cs == "" {
		return bad("no constraints")
	}
	r := VersRange{Scheme: scheme}
	if cs == "*" {
		r.Constraints = []VersConstraint{{Op: "*"}}
		return r, nil
	}
	parts := strings.Split(cs, "|")
	if len(parts) > maxVersConstraints {
		return bad("more than %d constraints", maxVersConstraints)
	}
	seen := map[string]bool{}
	for i, p := range parts {
		c := VersConstraint{Op: "="}
		for _, op := range []string{">=", "<=", "!=", "<", ">", "="} {
			if after, ok := strings.CutPrefix(p, op); ok {
				c.Op, p = op, after
				break
			}
		}
		ver, err := url.PathUnescape(p)
		switch {
		case err != nil:
			return bad("constraint %d: version %q: %v", i+1, p, err)
		case ver == "":
			return bad("constraint %d: no version", i+1)
		case ver == "*":
			return bad("constraint %d: \"*\" must be the only constraint", i+1)
		case strings.ContainsAny(ver[:1], "<>=!"):
			return bad("constraint %d: comparator %q not known", i+1, c.Op+p[:min(2, len(p))])
		case seen[ver]:
			return bad("version %q listed twice", ver)
		}
		seen[ver] = true
		c.Version = ver
		r.Constraints = append(r.Constraints, c)
	}
	return r, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (r VersRange) String() string {
	var b strings.Builder
	b.WriteString("vers:" + r.Scheme + "/")
	for i, c := range r.Constraints {
		if i > 0 {
			b.WriteByte('|')
		}
		if c.Op == "*" {
			b.WriteByte('*')
			continue
		}
		if c.Op != "=" {
			b.WriteString(c.Op)
		}
		b.WriteString(url.PathEscape(c.Version))
	}
	return b.String()
}

// Contains reports whether version v is in r, by the spec's algorithm: "*" is every
// version; v equal to an "=" version is in, to a "!=" version out; then the other
// constraints, in version order, are intervals (a leading < or <= open below, a
// trailing > or >= open above, a > or >= followed by a < or <= bounded); with only
// "!=" constraints every other version is in. An unsupported scheme is
// ErrVersScheme, a version the scheme cannot read (v's or the range's) an ErrInvalid.
func (r VersRange) Contains(v string) (bool, error) {
	cmpFn, ok := versSchemes[r.Scheme]
	if !ok {
		return false, fmt.Errorf("vers: %w: %q (supported: %s)", ErrVersScheme, r.Scheme, strings.Join(slices.Sorted(maps.Keys(versSchemes)), ", "))
	}
	if len(r.Constraints) == 1 && r.Constraints[0].Op == "*" {
		return true, nil
	}
	var rest []VersConstraint
	unequal := false
	for _, c := range r.Constraints {
		n, err := cmpFn(v, c.Version)
		if err != nil {
			return false, err
		}
		switch c.Op {
		case "=":
			if n == 0 {
				return true, nil
			}
		case "!=":
			if n == 0 {
				return false, nil
			}
			unequal = true
		default:
			rest = append(rest, c)
		}
	}
	if len(rest) == 0 {
		return unequal, nil
	}
	var sortErr error
	slices.SortFunc(rest, func(a, b VersConstraint) int {
		n, err := cmpFn(a.Version, b.Version)
		if err != nil {
			sortErr = err
		}
		return n
	})
	if sortErr != nil {
		return false, sortErr
	}
	holds := func(c VersConstraint) bool {
		n, _ := cmpFn(v, c.Version) // every version was read above
		switch c.Op {
		case "<":
			return n < 0
		case "<=":
			return n <= 0
		case ">":
			return n > 0
		}
		return n >= 0 // ">="
	}
	below := func(c VersConstraint) bool { return c.Op == "<" || c.Op == "<=" }
	if len(rest) == 1 {
		return holds(rest[0]), nil
	}
	for i := 0; i+1 < len(rest); i++ {
		cur, next := rest[i], rest[i+1]
		if i == 0 && below(cur) && holds(cur) {
			return true, nil
		}
		if i+2 == len(rest) && !below(next) && holds(next) {
			return true, nil
		}
		if !below(cur) && below(next) && holds(cur) && holds(next) {
			return true, nil
		}
	}
	return false, nil
}

// versContains parses vers and reports whether v is in it.
func versContains(vers, v string) (bool, error) {
	r, err := ParseVers(vers)
	if err != nil {
		return false, err
	}
	return r.Contains(v)
}

// semver is a semantic version (semver.org 2.0): build metadata is dropped.
type semver struct {
	core [3]uint64
	pre  []string
}

func parseSemver(s string) (semver, error) {
	var v semver
	bad := func(why string) (semver, error) {
		return semver{}, fmt.Errorf("vers: %w: %q is not a semantic version: %s", ErrInvalid, clip(s), why)
	}
	rest, _, _ := strings.Cut(s, "+")
	rest, pre, hasPre := strings.Cut(rest, "-")
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return bad("want MAJOR.MINOR.PATCH")
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || p == "" || (len(p) > 1 && p[0] == '0') {
			return bad("want numbers without leading zeros")
		}
		v.core[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
				return bad("a pre-release identifier is empty or not [0-9A-Za-z-]")
			}
		}
	}
	return v, nil
}

// compareSemver orders two semantic versions by precedence (build metadata aside).
func compareSemver(a, b string) (int, error) {
	x, y, err := parseBoth(parseSemver, a, b)
	if err != nil {
		return 0, err
	}
	for i := range x.core {
		if x.core[i] != y.core[i] {
			if x.core[i] < y.core[i] {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch {
	case len(x.pre) == 0 && len(y.pre) == 0:
		return 0, nil
	case len(x.pre) == 0:
		return 1, nil // a release is above its pre-releases
	case len(y.pre) == 0:
		return -1, nil
	}
	for i := 0; i < len(x.pre) && i < len(y.pre); i++ {
		// Numeric identifiers are below alphanumeric ones.
		if c := compareIdent(x.pre[i], y.pre[i], -1); c != 0 {
			return c, nil
		}
	}
	switch {
	case len(x.pre) < len(y.pre):
		return -1, nil
	case len(x.pre) > len(y.pre):
		return 1, nil
	}
	return 0, nil
}
