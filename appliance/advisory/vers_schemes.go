package advisory

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Comparisons of the vers schemes rpm, pypi and maven. Each returns -1, 0 or 1, or an
// ErrInvalid naming the version it cannot read (the match is then ambiguous).

// maxSchemeVersion bounds a version these comparisons read.
const maxSchemeVersion = 256

// parseBoth parses a and b with parse.
func parseBoth[T any](parse func(string) (T, error), a, b string) (x, y T, err error) {
	if x, err = parse(a); err == nil {
		y, err = parse(b)
	}
	return x, y, err
}

// compareIdent orders two dot-separated identifiers: numbers as numbers, others
// lexically, and a number against another identifier as numFirst says (1: the number
// is above, -1: below).
func compareIdent(p, q string, numFirst int) int {
	pn, qn := isDigits(p), isDigits(q)
	switch {
	case pn && qn:
		return compareNum(p, q)
	case pn:
		return numFirst
	case qn:
		return -numFirst
	}
	return strings.Compare(p, q)
}

func badVersion(scheme, v, why string) error {
	return fmt.Errorf("vers: %w: %q is not a %s version: %s", ErrInvalid, clip(v), scheme, why)
}

// compareRPM orders two rpm versions ([epoch:]version[-release]) as rpm does: the
// epoch as a number (none is 0), then version and release by rpmvercmp. A release is
// compared only when both have one, as rpm matches a dependency without a release
// against any release.
func compareRPM(a, b string) (int, error) {
	ea, va, ra, err := splitRPM(a)
	if err != nil {
		return 0, err
	}
	eb, vb, rb, err := splitRPM(b)
	if err != nil {
		return 0, err
	}
	if c := compareNum(ea, eb); c != 0 {
		return c, nil
	}
	if c := rpmvercmp(va, vb); c != 0 || ra == "" || rb == "" {
		return c, nil
	}
	return rpmvercmp(ra, rb), nil
}

func splitRPM(s string) (epoch, version, release string, err error) {
	if s == "" || len(s) > maxSchemeVersion {
		return "", "", "", badVersion("rpm", s, fmt.Sprintf("empty or longer than %d characters", maxSchemeVersion))
	}
	v := s
	if e, rest, ok := strings.Cut(v, ":"); ok {
		if e == "" || !isDigits(e) {
			return "", "", "", badVersion("rpm", s, "the epoch before ':' is not a number")
		}
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, release = v[:i], v[i+1:]
		if release == "" {
			return "", "", "", badVersion("rpm", s, "empty release after '-'")
		}
	}
	if v == "" {
		return "", "", "", badVersion("rpm", s, "no version")
	}
	return epoch, v, release, nil
}

func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// rpmvercmp is rpm's comparison of two version (or release) strings: runs of digits
// (as numbers) and of letters compared in turn, other characters separating them; a
// number is above letters; '~' sorts before anything, even the end; '^' after the end
// but before anything else.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		at := func(s string, k int) byte {
			if k < len(s) {
				return s[k]
			}
			return 0
		}
		ca, cb := at(a, i), at(b, j)
		if ca == '~' || cb == '~' {
			if ca != '~' {
				return 1
			}
			if cb != '~' {
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if ca == '^' || cb == '^' {
			switch {
			case ca == 0:
				return -1
			case cb == 0:
				return 1
			case ca != '^':
				return 1
			case cb != '^':
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if ca == 0 || cb == 0 {
			break
		}
		class := isAlpha
		if isDigit(ca) {
			class = isDigit
		}
		ei, ej := i, j
		for ei < len(a) && class(a[ei]) {
			ei++
		}
		for ej < len(b) && class(b[ej]) {
			ej++
		}
		sa, sb := a[i:ei], b[j:ej]
		if sb == "" { // different kinds: a number is above letters
			if isDigit(ca) {
				return 1
			}
			return -1
		}
		var c int
		if isDigit(ca) {
			c = compareNum(sa, sb)
		} else {
			c = strings.Compare(sa, sb)
		}
		if c != 0 {
			return c
		}
		i, j = ei, ej
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i < len(a):
		return 1
	}
	return -1
}

// pep440 is PEP 440's version form (canonical and the permitted spellings), as the
// Python packaging library reads it.
var pep440 = regexp.MustCompile(`^v?(?:([0-9]+)!)?([0-9]+(?:\.[0-9]+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?([0-9]+)?)?` +
	`(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?` +
	`(?:[-_.]?(dev)[-_.]?([0-9]+)?)?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

// pyVersion is a PEP 440 version as its ordering sees it.
type pyVersion struct {
	epoch   string
	release []string
	pre     int    // -2: a dev release with no pre or post release; 0: none; 1 a, 2 b, 3 rc
	preN    string // the pre-release's number
	post    string // "" none
	dev     string // "" none
	hasPost bool
	hasDev  bool
	local   []string
}

func parsePEP440(s string) (pyVersion, error) {
	if len(s) > maxSchemeVersion {
		return pyVersion{}, badVersion("PEP 440", s, fmt.Sprintf("longer than %d characters", maxSchemeVersion))
	}
	m := pep440.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return pyVersion{}, badVersion("PEP 440", s, "want [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]")
	}
	num := func(n string) string {
		if n == "" {
			return "0"
		}
		return n
	}
	v := pyVersion{epoch: num(m[1]), release: strings.Split(m[2], ".")}
	for len(v.release) > 1 && strings.Trim(v.release[len(v.release)-1], "0") == "" {
		v.release = v.release[:len(v.release)-1] // 1.0 == 1.0.0
	}
	switch m[3] {
	case "a", "alpha":
		v.pre = 1
	case "b", "beta":
		v.pre = 2
	case "c", "rc", "pre", "preview":
		v.pre = 3
	}
	if v.pre != 0 {
		v.preN = num(m[4])
	}
	switch {
	case m[5] != "":
		v.hasPost, v.post = true, m[5]
	case m[6] != "":
		v.hasPost, v.post = true, num(m[7])
	}
	if m[8] != "" {
		v.hasDev, v.dev = true, num(m[9])
	}
	if v.pre == 0 && !v.hasPost && v.hasDev {
		v.pre = -2 // 1.0.dev1 is below 1.0a1
	}
	if m[10] != "" {
		v.local = strings.FieldsFunc(m[10], func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, nil
}

// comparePEP440 orders two Python package versions by PEP 440: epoch, release
// (trailing zeros aside), then dev-only releases below pre-releases (a < b < rc) below
// the release, post-releases above it, a dev release below the release it precedes,
// and a local version label above the same public version.
func comparePEP440(a, b string) (int, error) {
	x, y, err := parseBoth(parsePEP440, a, b)
	if err != nil {
		return 0, err
	}
	if c := compareNum(x.epoch, y.epoch); c != 0 {
		return c, nil
	}
	for i := 0; i < max(len(x.release), len(y.release)); i++ {
		p, q := "0", "0"
		if i < len(x.release) {
			p = x.release[i]
		}
		if i < len(y.release) {
			q = y.release[i]
		}
		if c := compareNum(p, q); c != 0 {
			return c, nil
		}
	}
	// Pre-release: none (0) is above any (1..3) and the dev-only marker (-2).
	rank := func(v pyVersion) int {
		if v.pre == 0 {
			return 4
		}
		return v.pre
	}
	if c := cmp.Compare(rank(x), rank(y)); c != 0 {
		return c, nil
	}
	if x.pre > 0 {
		if c := compareNum(x.preN, y.preN); c != 0 {
			return c, nil
		}
	}
	if x.hasPost != y.hasPost {
		return boolCmp(x.hasPost), nil
	}
	if c := compareNum(x.post, y.post); c != 0 {
		return c, nil
	}
	if x.hasDev != y.hasDev {
		return -boolCmp(x.hasDev), nil // a dev release is below the same version without
	}
	if c := compareNum(x.dev, y.dev); c != 0 {
		return c, nil
	}
	for i := 0; i < len(x.local) && i < len(y.local); i++ {
		// Numeric segments are above alphanumeric ones.
		if c := compareIdent(x.local[i], y.local[i], 1); c != 0 {
			return c, nil
		}
	}
	return cmp.Compare(len(x.local), len(y.local)), nil
}

// boolCmp is 1 for true, -1 for false.
func boolCmp(b bool) int {
	if b {
		return 1
	}
	return -1
}

// A maven version item (ComparableVersion): a number, a qualifier or a sub-list
// (what follows a '-' or a change between digits and letters).
type mvnItem struct {
	kind byte   // 'i' number, 's' qualifier, 'l' list
	s    string // the number's digits or the qualifier's comparable form
	list []mvnItem
}

// mvnQualifiers are the known qualifiers in order; "" is the release (ga, final,
// release); other qualifiers come after sp, in lexical order.
var mvnQualifiers = []string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"}

func mvnQualifier(q string, followedByDigit bool) mvnItem {
	if followedByDigit && len(q) == 1 {
		switch q {
		case "a":
			q = "alpha"
		case "b":
			q = "beta"
		case "m":
			q = "milestone"
		}
	}
	switch q {
	case "ga", "final", "release":
		q = ""
	case "cr":
		q = "rc"
	}
	for i, k := range mvnQualifiers {
		if k == q {
			return mvnItem{kind: 's', s: fmt.Sprint(i)}
		}
	}
	return mvnItem{kind: 's', s: fmt.Sprint(len(mvnQualifiers)) + "-" + q}
}

func mvnNumber(digits string) mvnItem {
	d := strings.TrimLeft(digits, "0")
	if d == "" {
		d = "0"
	}
	return mvnItem{kind: 'i', s: d}
}

func (it mvnItem) isNull() bool {
	switch it.kind {
	case 'i':
		return it.s == "0"
	case 's':
		return it.s == "5" // the release
	}
	return len(it.list) == 0
}

// parseMaven reads a version as maven's ComparableVersion does: lower-cased, split at
// '.', at '-' (which opens a sub-list) and between digits and letters (likewise),
// trailing null items (0, release qualifiers, empty lists) trimmed from each list.
func parseMaven(s string) (mvnItem, error) {
	if s == "" || len(s) > maxSchemeVersion {
		return mvnItem{}, badVersion("maven", s, fmt.Sprintf("empty or longer than %d characters", maxSchemeVersion))
	}
	v := strings.ToLower(s)
	root := &mvnItem{kind: 'l'}
	stack := []*mvnItem{root}
	cur := root
	push := func() {
		cur.list = append(cur.list, mvnItem{kind: 'l'})
		cur = &cur.list[len(cur.list)-1]
		stack = append(stack, cur)
	}
	item := func(digit bool, tok string, followedByDigit bool) mvnItem {
		if digit {
			return mvnNumber(tok)
		}
		return mvnQualifier(tok, followedByDigit)
	}
	digit, start := false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.' || c == '-':
			if i == start {
				cur.list = append(cur.list, mvnItem{kind: 'i', s: "0"})
			} else {
				cur.list = append(cur.list, item(digit, v[start:i], false))
			}
			start = i + 1
			if c == '-' {
				push()
			}
		case isDigit(c):
			if !digit && i > start {
				cur.list = append(cur.list, mvnQualifier(v[start:i], true))
				start = i
				push()
			}
			digit = true
		default:
			if digit && i > start {
				cur.list = append(cur.list, mvnNumber(v[start:i]))
				start = i
				push()
			}
			digit = false
		}
	}
	if len(v) > start {
		cur.list = append(cur.list, item(digit, v[start:], false))
	}
	// Pointers into the lists stay valid: a list is only appended to while it is the
	// innermost one, and its sub-lists are appended after; normalise innermost first.
	for k := len(stack) - 1; k >= 0; k-- {
		l := stack[k]
		for i := len(l.list) - 1; i >= 0; i-- {
			if l.list[i].isNull() {
				l.list = slices.Delete(l.list, i, i+1)
			} else if l.list[i].kind != 'l' {
				break
			}
		}
	}
	return *root, nil
}

// mvnCompare compares x with y; y nil stands for the missing item of a shorter list.
func mvnCompare(x mvnItem, y *mvnItem) int {
	if y == nil {
		switch x.kind {
		case 'i':
			if x.s == "0" {
				return 0
			}
			return 1
		case 's':
			return strings.Compare(x.s, "5")
		}
		if len(x.list) == 0 {
			return 0
		}
		return mvnCompare(x.list[0], nil)
	}
	switch {
	case x.kind == 'i' && y.kind == 'i':
		return compareNum(x.s, y.s)
	case x.kind == 'i':
		return 1 // a number is above a qualifier and a list
	case x.kind == 's' && y.kind == 's':
		return strings.Compare(x.s, y.s)
	case x.kind == 's':
		return -1
	case y.kind == 'i':
		return -1 // a list is below a number
	case y.kind == 's':
		return 1 // and above a qualifier
	}
	for i := 0; i < max(len(x.list), len(y.list)); i++ {
		var c int
		switch {
		case i >= len(x.list):
			c = -mvnCompare(y.list[i], nil)
		case i >= len(y.list):
			c = mvnCompare(x.list[i], nil)
		default:
			c = mvnCompare(x.list[i], &y.list[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// compareMaven orders two maven versions as maven's ComparableVersion does: numbers
// as numbers, qualifiers alpha (a1) < beta (b1) < milestone (m1) < rc (cr) <
// snapshot < the release ("", ga, final) < sp < any other (lexically), a number above
// a qualifier; "1" equals "1.0", "1-ga" and "1.0.0".
func compareMaven(a, b string) (int, error) {
	x, y, err := parseBoth(parseMaven, a, b)
	if err != nil {
		return 0, err
	}
	return mvnCompare(x, &y), nil
}
