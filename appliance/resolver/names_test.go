package resolver

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // sorted entries
		errLine int      // 0: no error
		errText string
	}{
		{"names, wildcards, comments, blanks", "# header\n\nUpdate.Vendor.Example.  # trailing comment\n*.CDN.vendor.example\n  dl.vendor.example\n",
			[]string{"*.cdn.vendor.example", "dl.vendor.example", "update.vendor.example"}, 0, ""},
		{"A-label IDN", "xn--bcher-kva.example\n", []string{"xn--bcher-kva.example"}, 0, ""},
		{"U-label IDN is refused with a hint", "ok.example\nbücher.example\n", nil, 2, "A-label"},
		{"two names on a line", "a.example b.example\n", nil, 1, "one name a line"},
		{"inner wildcard", "a.*.example\n", nil, 1, "wildcard"},
		{"bare TLD wildcard", "*.com\n", nil, 1, "two labels"},
		{"empty label", "a..example\n", nil, 1, "empty label"},
		{"leading hyphen", "-a.example\n", nil, 1, "label"},
		{"label too long", strings.Repeat("a", 64) + ".example\n", nil, 1, "63"},
		{"bad line after good ones", "a.example\nb.example\n\n# c\nbad_name!.example\n", nil, 5, "label"},
		{"line too long", strings.Repeat("x", maxListLine+10) + "\n", nil, 1, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := ParseList(strings.NewReader(tc.in), "test.txt")
			if tc.errLine > 0 {
				var le *ListError
				if !errors.As(err, &le) || le.Line != tc.errLine || le.File != "test.txt" || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("ParseList error = %v, want test.txt:%d: ...%s...", err, tc.errLine, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseList: %v", err)
			}
			got := set.Entries()
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNameSetMatch(t *testing.T) {
	set, err := ParseList(strings.NewReader("update.vendor.example\n*.cdn.vendor.example\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want bool
	}{
		{"update.vendor.example", true},
		{"x.update.vendor.example", false}, // exact entries do not cover children
		{"a.cdn.vendor.example", true},
		{"a.b.cdn.vendor.example", true},
		{"cdn.vendor.example", false}, // the bare parent of a wildcard is not matched
		{"xcdn.vendor.example", false},
		{"vendor.example", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := set.Match(tc.name); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestShippedListsParse loads every shipped list: a bad line there would leave a segment
// without its names.
func TestShippedListsParse(t *testing.T) {
	files, _ := os.ReadDir("../../configs/allowlists")
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".txt") {
			continue
		}
		n++
		set, err := readList("../../configs/allowlists/" + f.Name())
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if set.Len() == 0 {
			t.Errorf("%s has no entries", f.Name())
		}
	}
	if n == 0 {
		t.Fatal("no lists in configs/allowlists")
	}
}

// TestEmbeddedDoHListIsShippedList keeps the copy go generate makes equal to its source.
func TestEmbeddedDoHListIsShippedList(t *testing.T) {
	src, err := os.ReadFile("../../configs/allowlists/public-doh.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != publicDoH {
		t.Error("public-doh.txt differs from configs/allowlists/public-doh.txt: run go generate ./appliance/resolver")
	}
	set, err := ParseList(strings.NewReader(publicDoH), "public-doh.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"dns.google", "cloudflare-dns.com", "mozilla.cloudflare-dns.com", "dns.quad9.net", "doh.opendns.com"} {
		if !set.Match(n) {
			t.Errorf("the DoH list does not block %s", n)
		}
	}
}
