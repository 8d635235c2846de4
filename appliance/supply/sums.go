package supply

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry is one file a checksum file or an import manifest lists. Size is -1 when the
// list does not say (SHA256SUMS).
type Entry struct {
	Name   string
	SHA256 string
	Size   int64
}

// maxListLine bounds one line of a checksum file, manifest or Debian index.
const maxListLine = 64 << 10

// ParseSums reads a SHA256SUMS-style file ("HEX  NAME" or "HEX *NAME", as sha256sum
// writes it). Blank lines are skipped. name is the file's name in messages; an error
// names the line.
func ParseSums(name string, r io.Reader) ([]Entry, error) {
	return parseList(name, r, false)
}

// ParseManifest reads an import manifest: lines of "HEX SIZE NAME" (the name may hold
// spaces), blank lines and lines starting with # skipped.
func ParseManifest(name string, r io.Reader) ([]Entry, error) {
	return parseList(name, r, true)
}

func parseList(name string, r io.Reader, withSize bool) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxListLine)
	var out []Entry
	seen := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || withSize && strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseListLine(line, withSize)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if first, ok := seen[e.Name]; ok {
			return nil, fmt.Errorf("%s:%d: %q already listed on line %d", name, n, e.Name, first)
		}
		seen[e.Name] = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return out, nil
}

func parseListLine(line string, withSize bool) (Entry, error) {
	hash, rest, ok := strings.Cut(line, " ")
	hash = strings.ToLower(hash)
	if !ok || !hexRE.MatchString(hash) {
		return Entry{}, fmt.Errorf("want a sha256 (64 hex digits) then a space, got %q", clip(line))
	}
	e := Entry{SHA256: hash, Size: -1}
	if withSize {
		rest = strings.TrimLeft(rest, " \t")
		sz, tail, ok := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(sz, 10, 64)
		if !ok || err != nil || n < 0 {
			return Entry{}, fmt.Errorf("want a size in bytes after the sha256, got %q", clip(sz))
		}
		e.Size, rest = n, strings.TrimLeft(tail, " \t")
	} else {
		// sha256sum writes two characters between hash and name: " " (text) or "*" (binary).
		if len(rest) < 2 || rest[0] != ' ' && rest[0] != '*' {
			return Entry{}, fmt.Errorf("want two spaces or \" *\" between sha256 and name, got %q", clip(line))
		}
		rest = rest[1:]
	}
	rest = strings.TrimPrefix(rest, "./")
	if err := checkFileName(rest); err != nil {
		return Entry{}, err
	}
	e.Name = rest
	return e, nil
}

// checkFileName refuses names that would leave the directory they are listed in.
func checkFileName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("missing file name")
	case strings.HasPrefix(n, "/") || strings.Contains(n, "\\") || strings.ContainsRune(n, 0):
		return fmt.Errorf("file name %q must be relative, without backslashes", clip(n))
	}
	for _, part := range strings.Split(n, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("file name %q must not hold empty, . or .. parts", clip(n))
		}
	}
	return nil
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// looksLikeHTML reports whether the start of a body is an HTML page (a portal, a login
// or an error page answered where a file was expected).
func looksLikeHTML(head []byte) bool {
	h := bytes.ToLower(bytes.TrimLeft(head, " \t\r\n\ufeff"))
	return bytes.HasPrefix(h, []byte("<!doctype html")) || bytes.HasPrefix(h, []byte("<html")) ||
		bytes.HasPrefix(h, []byte("<head")) || bytes.HasPrefix(h, []byte("<body"))
}
