package forward

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/atomicfile"
)

// The cursor file holds the sequence number of the last record the target
// acknowledged, in decimal, followed by a newline: "1234\n". It is replaced with
// atomicfile after every acknowledged batch, so a crash leaves the old number or the
// new one; records after the old one are then sent again (at least once).

// ParseCursor reads a cursor file's content strictly: decimal digits and one optional
// final newline.
func ParseCursor(b []byte) (uint64, error) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" || len(s) > 20 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("want a record number and a newline, got %q", trim(s))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("record number %q out of range", s)
	}
	return n, nil
}

func formatCursor(n uint64) []byte { return []byte(strconv.FormatUint(n, 10) + "\n") }

// loadCursor reads path; a missing file is 0 (nothing forwarded yet).
func loadCursor(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("forward: read cursor: %w", err)
	}
	n, err := ParseCursor(b)
	if err != nil {
		return 0, fmt.Errorf("forward: cursor %s: %w", path, err)
	}
	return n, nil
}

func saveCursor(path string, n uint64) error {
	if err := atomicfile.Write(path, formatCursor(n), 0o600); err != nil {
		return fmt.Errorf("forward: write cursor: %w", err)
	}
	return nil
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
