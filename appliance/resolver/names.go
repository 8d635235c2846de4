package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// NameSet is a set of exact names and wildcard suffixes, matched case-insensitively.
// "*.vendor.example" matches every name strictly below vendor.example, not
// vendor.example itself: list the bare name as well to allow it. A NameSet is immutable
// once built and safe for concurrent use.
type NameSet struct {
	exact    map[string]struct{}
	wildcard map[string]struct{} // suffixes without "*."
}

// newNameSet returns an empty set.
func newNameSet() *NameSet {
	return &NameSet{exact: map[string]struct{}{}, wildcard: map[string]struct{}{}}
}

// Len is the number of entries.
func (s *NameSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.exact) + len(s.wildcard)
}

// add adds an entry already checked by parseEntry.
func (s *NameSet) add(e entry) {
	if e.wildcard {
		s.wildcard[e.name] = struct{}{}
	} else {
		s.exact[e.name] = struct{}{}
	}
}

// merge adds every entry of o.
func (s *NameSet) merge(o *NameSet) {
	if o == nil {
		return
	}
	for n := range o.exact {
		s.exact[n] = struct{}{}
	}
	for n := range o.wildcard {
		s.wildcard[n] = struct{}{}
	}
}

// Match reports whether name (lower case, no trailing dot) is in the set.
func (s *NameSet) Match(name string) bool {
	if s == nil {
		return false
	}
	if _, ok := s.exact[name]; ok {
		return true
	}
	if len(s.wildcard) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if _, ok := s.wildcard[name[i+1:]]; ok {
				return true
			}
		}
	}
	return false
}

// Entries returns the set as list lines ("name" or "*.suffix"), unsorted.
func (s *NameSet) Entries() []string {
	var out []string
	for n := range s.exact {
		out = append(out, n)
	}
	for n := range s.wildcard {
		out = append(out, "*."+n)
	}
	return out
}

// entry is one parsed allowlist line.
type entry struct {
	name     string // lower case, no trailing dot, without "*."
	wildcard bool
}

// parseEntry checks one list entry: an exact name or "*.suffix", in A-label form, and
// returns it in canonical form (lower case, no trailing dot).
func parseEntry(s string) (entry, error) {
	var e entry
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "*.") {
		e.wildcard = true
		s = s[2:]
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return e, errors.New("empty name")
	}
	if !isASCII(s) {
		return e, fmt.Errorf("%q is not in A-label form: write IDNs as xn--... (e.g. idn2 %q)", s, s)
	}
	s = strings.ToLower(s)
	if len(s) > 253 {
		return e, fmt.Errorf("name longer than 253 characters")
	}
	if strings.Contains(s, "*") {
		return e, fmt.Errorf("%q: a wildcard is allowed only as a leading \"*.\"", s)
	}
	for _, l := range strings.Split(s, ".") {
		if err := checkLabel(l); err != nil {
			return e, fmt.Errorf("%q: %w", s, err)
		}
	}
	if e.wildcard && !strings.Contains(s, ".") {
		return e, fmt.Errorf("%q: a wildcard must be below a name with at least two labels", "*."+s)
	}
	e.name = s
	return e, nil
}

func checkLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return errors.New("label longer than 63 characters")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '-' && i > 0 && i < len(l)-1:
		default:
			return fmt.Errorf("label %q: want letters, digits, _ and inner -", l)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ListError is a bad line in a list file.
type ListError struct {
	File string
	Line int
	Err  error
}

func (e *ListError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ListError) Unwrap() error { return e.Err }

// maxListLine bounds one line of a list file.
const maxListLine = 4096

// ParseList reads a list file: one name or *.suffix a line; blank lines and everything
// from a '#' on are ignored. The first bad line is returned as *ListError naming file and
// line; nothing of a bad list is used.
func ParseList(r io.Reader, file string) (*NameSet, error) {
	set := newNameSet()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxListLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, &ListError{file, n, fmt.Errorf("one name a line, got %q", line)}
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, &ListError{file, n, err}
		}
		set.add(e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ListError{file, n + 1, fmt.Errorf("line longer than %d bytes", maxListLine)}
		}
		return nil, fmt.Errorf("resolver: read list %s: %w", file, err)
	}
	return set, nil
}

// lowerFQDN lower-cases a question name and makes sure it ends in a dot; it allocates
// only when the name has upper-case letters (or lacks the dot).
func lowerFQDN(qname string) string {
	if !strings.HasSuffix(qname, ".") {
		qname += "."
	}
	for i := 0; i < len(qname); i++ {
		if c := qname[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(qname)
		}
	}
	return qname
}

// canonical lower-cases a query name and drops its trailing dot; it allocates only when
// the name has upper-case letters.
func canonical(qname string) string {
	qname = strings.TrimSuffix(qname, ".")
	for i := 0; i < len(qname); i++ {
		if c := qname[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(qname)
		}
	}
	return qname
}
