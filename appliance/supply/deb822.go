package supply

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// paragraph is one stanza of a Debian control file (RFC 822 style fields). Line is the
// line of its first field; lines holds each field's line.
type paragraph struct {
	Line   int
	fields map[string]string
	lines  map[string]int
}

func (p paragraph) get(f string) (string, int) {
	return p.fields[strings.ToLower(f)], p.lines[strings.ToLower(f)]
}

// parseDeb822 reads the paragraphs of a Debian control file (Release, Packages), each
// field's continuation lines joined with "\n". An error names the line.
func parseDeb822(name string, r io.Reader, each func(paragraph) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxListLine)
	var cur *paragraph
	var last string
	flush := func() error {
		if cur == nil {
			return nil
		}
		p := *cur
		cur, last = nil, ""
		return each(p)
	}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil || last == "" {
				return fmt.Errorf("%s:%d: continuation line outside a field", name, n)
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			if cur.fields[last] == "" {
				cur.fields[last] = v
			} else {
				cur.fields[last] += "\n" + v
			}
		case line[0] == '#':
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return fmt.Errorf("%s:%d: want \"Field: value\", got %q", name, n, clip(line))
			}
			if cur == nil {
				cur = &paragraph{Line: n, fields: map[string]string{}, lines: map[string]int{}}
			}
			key := strings.ToLower(k)
			if first, dup := cur.lines[key]; dup {
				return fmt.Errorf("%s:%d: field %s repeated (first on line %d)", name, n, k, first)
			}
			cur.fields[key], cur.lines[key], last = strings.TrimSpace(v), n, key
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return flush()
}

// Release is what the appliance uses of a suite's (In)Release file: its validity and the
// sha256 and size of each index it lists.
type Release struct {
	Suite      string
	Date       time.Time
	ValidUntil time.Time // zero: the archive sets no limit
	Files      map[string]Entry
}

// ParseRelease reads the signed text of an InRelease (or a Release file).
func ParseRelease(name string, r io.Reader) (*Release, error) {
	var rel *Release
	err := parseDeb822(name, r, func(p paragraph) error {
		if rel != nil {
			return fmt.Errorf("%s:%d: a Release file has one paragraph, found another", name, p.Line)
		}
		rel = &Release{Files: map[string]Entry{}}
		rel.Suite, _ = p.get("Suite")
		for field, dst := range map[string]*time.Time{"Date": &rel.Date, "Valid-Until": &rel.ValidUntil} {
			v, line := p.get(field)
			if v == "" {
				continue
			}
			t, err := parseDebianTime(v)
			if err != nil {
				return fmt.Errorf("%s:%d: %s: %w", name, line, field, err)
			}
			*dst = t
		}
		sums, line := p.get("SHA256")
		if line == 0 {
			return fmt.Errorf("%s:%d: no SHA256 field: the archive lists no sha256 of its indexes", name, p.Line)
		}
		for i, l := range strings.Split(sums, "\n") {
			if l == "" {
				continue
			}
			f := strings.Fields(l)
			if len(f) != 3 {
				return fmt.Errorf("%s:%d: SHA256: want \"HEX SIZE PATH\", got %q", name, line+i+1, clip(l))
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if !hexRE.MatchString(strings.ToLower(f[0])) || err != nil || size < 0 {
				return fmt.Errorf("%s:%d: SHA256: want \"HEX SIZE PATH\", got %q", name, line+i+1, clip(l))
			}
			if err := checkFileName(f[2]); err != nil {
				return fmt.Errorf("%s:%d: SHA256: %w", name, line+i+1, err)
			}
			rel.Files[f[2]] = Entry{Name: f[2], SHA256: strings.ToLower(f[0]), Size: size}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rel == nil {
		return nil, fmt.Errorf("%s: empty", name)
	}
	return rel, nil
}

func parseDebianTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date like \"Sat, 05 Dec 2026 10:00:00 UTC\", got %q", clip(v))
}

// Package is one binary package of a Packages index.
type Package struct {
	Name, Version, Architecture string
	Filename                    string // relative to the archive root
	Size                        int64
	SHA256                      string
	Line                        int
}

// ParsePackages reads a Packages index, calling each for every package. Every package
// must carry Package, Version, Filename, Size and SHA256; an error names the line.
func ParsePackages(name string, r io.Reader, each func(Package) error) error {
	return parseDeb822(name, r, func(p paragraph) error {
		pk := Package{Line: p.Line}
		var line int
		for _, f := range []struct {
			name string
			dst  *string
		}{{"Package", &pk.Name}, {"Version", &pk.Version}, {"Filename", &pk.Filename}, {"SHA256", &pk.SHA256}} {
			if *f.dst, _ = p.get(f.name); *f.dst == "" {
				return fmt.Errorf("%s:%d: package without %s", name, p.Line, f.name)
			}
		}
		pk.Architecture, _ = p.get("Architecture")
		if _, line = p.get("SHA256"); !hexRE.MatchString(pk.SHA256) {
			return fmt.Errorf("%s:%d: SHA256: want 64 lowercase hex digits, got %q", name, line, clip(pk.SHA256))
		}
		if _, line = p.get("Filename"); checkFileName(pk.Filename) != nil {
			return fmt.Errorf("%s:%d: Filename: %w", name, line, checkFileName(pk.Filename))
		}
		sz, line := p.get("Size")
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			if line == 0 {
				line = p.Line
			}
			return fmt.Errorf("%s:%d: Size: want a size in bytes, got %q", name, line, clip(sz))
		}
		pk.Size = n
		return each(pk)
	})
}
