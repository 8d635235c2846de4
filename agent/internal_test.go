package agent

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/agentapi"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"99999999999", 7 * 24 * time.Hour},
		{"Mon, 09 Mar 2026 03:10:00 GMT", 10 * time.Minute},
		{"Mon, 09 Mar 2026 02:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestContentRangeStart(t *testing.T) {
	tests := map[string]int64{
		"bytes 100-199/200": 100, "bytes 0-0/1": 0, "bytes */200": -1, "items 1-2/3": -1, "": -1, "bytes x-1/2": -1,
	}
	for in, want := range tests {
		if got := contentRangeStart(in); got != want {
			t.Errorf("contentRangeStart(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestOSRelease(t *testing.T) {
	tests := []struct{ in, want string }{
		{"NAME=\"Debian GNU/Linux\"\nVERSION=\"13 (trixie)\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n", "Debian GNU/Linux 13 (trixie)"},
		{"# comment\nNAME=Alpine\nVERSION='3.20'\n", "Alpine 3.20"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := osRelease([]byte(tc.in)); got != tc.want {
			t.Errorf("osRelease(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParsePackages(t *testing.T) {
	in := "openssl\t3.0.13-1\n\nbroken-line\nlibc6\t2.41-6\n" + strings.Repeat("x", 201) + "\t1\n"
	want := []agentapi.Package{{Name: "openssl", Version: "3.0.13-1"}, {Name: "libc6", Version: "2.41-6"}}
	if diff := cmp.Diff(want, parsePackages([]byte(in))); diff != "" {
		t.Errorf("parsePackages (-want +got):\n%s", diff)
	}
	many := strings.Repeat("p\t1\n", maxPackages+10)
	if got := len(parsePackages([]byte(many))); got != maxPackages {
		t.Errorf("parsePackages of %d lines kept %d, want %d", maxPackages+10, got, maxPackages)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	got := clip(long)
	if len(got) > maxFactBytes || !utf8.ValidString(got) {
		t.Errorf("clip: %d bytes, valid UTF-8 %v; want at most %d and valid", len(got), utf8.ValidString(got), maxFactBytes)
	}
	if clip("  short \n") != "short" {
		t.Errorf("clip did not trim")
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 10}
	tb.Write([]byte("hello "))
	tb.Write([]byte("wörld, again"))
	if got := tb.String(); got != "ld, again" && got != "rld, again" {
		t.Errorf("tail = %q, want the last 10 bytes cut to a character boundary", got)
	}
	if got := tb.String(); len(got) > 10 || !utf8.ValidString(got) {
		t.Errorf("tail = %q: longer than 10 bytes or broken UTF-8", got)
	}
}

func TestGatherFactsHere(t *testing.T) {
	f := GatherFacts(t.Context(), "v9")
	if f.Hostname == "" || f.OS == "" || f.Arch == "" || f.AgentVersion != "v9" {
		t.Errorf("GatherFacts = %+v, want hostname, os, arch and the version", f)
	}
	if len(f.Packages) > maxPackages {
		t.Errorf("%d packages, want at most %d", len(f.Packages), maxPackages)
	}
}

// FuzzRetryAfter: any header value gives a wait between 0 and a week, never a panic.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "120", "-1", "Mon, 09 Mar 2026 03:10:00 GMT", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d := retryAfter(s, now); d < 0 || d > 7*24*time.Hour {
			t.Fatalf("retryAfter(%q) = %s, want 0..168h", s, d)
		}
	})
}

// FuzzContentRangeStart: never panics; a start it returns is not negative unless -1.
func FuzzContentRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 100-199/200", "bytes */1", "bytes -1-2/3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n := contentRangeStart(s); n < -1 {
			t.Fatalf("contentRangeStart(%q) = %d", s, n)
		}
	})
}

// FuzzFactsParsers: os-release and package-list parsing never panic, and what they
// return stays within the appliance's limits.
func FuzzFactsParsers(f *testing.F) {
	f.Add([]byte("PRETTY_NAME=\"Debian\"\nopenssl\t3\n"))
	f.Add([]byte("NAME='x\nVERSION=\"\\\"\"\n\t\t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		osRelease(data)
		for _, p := range parsePackages(data) {
			if p.Name == "" || len(p.Name) > maxFactBytes || len(p.Version) > maxFactBytes {
				t.Fatalf("package %q %q breaks the limits", p.Name, p.Version)
			}
		}
		if c := clip(string(data)); len(c) > maxFactBytes {
			t.Fatalf("clip kept %d bytes", len(c))
		}
	})
}
