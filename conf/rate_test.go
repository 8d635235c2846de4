package conf

import "testing"

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"0", 0, true},
		{"100Mbit/s", 12_500_000, true},
		{"1Gbit/s", 125_000_000, true},
		{"64kbit/s", 8000, true},
		{"2.5MB/s", 2_500_000, true},
		{"512KiB/s", 512 << 10, true},
		{"1 MiB/s", 1 << 20, true},
		{"10B/s", 10, true},
		{"100Mbit", 0, false},
		{"-1MB/s", 0, false},
		{"MB/s", 0, false},
		{"1e30GB/s", 0, false},
		{"NaNMB/s", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseRate: ParseRate never panics, never returns a negative rate, and what it
// accepts prints as a rate it parses back to the same value.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "100Mbit/s", "2.5MB/s", "512KiB/s", "1e3kbit/s", "-1B/s", " 7 GB/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d < 0", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d prints %q which parses to %d, %v", s, r, r.String(), back, err)
		}
	})
}
