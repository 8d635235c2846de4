package forward

import (
	"path/filepath"
	"testing"
)

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		bad      bool
	}{
		{"zero", "0\n", 0, false},
		{"number", "1234\n", 1234, false},
		{"no newline", "7", 7, false},
		{"max", "18446744073709551615\n", 1<<64 - 1, false},
		{"empty", "", 0, true},
		{"only newline", "\n", 0, true},
		{"two newlines", "5\n\n", 0, true},
		{"sign", "-1\n", 0, true},
		{"space", " 5\n", 0, true},
		{"overflow", "18446744073709551616\n", 0, true},
		{"words", "seq=5\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCursor([]byte(tc.in))
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("ParseCursor(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestCursorFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cursor-x")
	if n, err := loadCursor(path); err != nil || n != 0 {
		t.Fatalf("missing cursor = %d, %v; want 0, nil", n, err)
	}
	if err := saveCursor(path, 42); err != nil {
		t.Fatal(err)
	}
	if n, err := loadCursor(path); err != nil || n != 42 {
		t.Fatalf("cursor = %d, %v; want 42", n, err)
	}
}

// FuzzParseCursor: never panics, and what it accepts formats back to the same number.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"0\n", "42", "18446744073709551615\n", "", "x", "-1", "1\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseCursor(b)
		if err != nil {
			return
		}
		m, err := ParseCursor(formatCursor(n))
		if err != nil || m != n {
			t.Fatalf("round trip of %d = %d, %v", n, m, err)
		}
	})
}
