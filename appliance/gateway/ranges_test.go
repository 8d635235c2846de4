package gateway

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMergeRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		v6   bool
		want string
	}{
		{"empty", nil, false, ""},
		{"single address", []string{"192.0.2.7/32"}, false, "192.0.2.7"},
		{"adjacent halves join", []string{"203.0.113.128/25", "203.0.113.0/25"}, false, "203.0.113.0/24"},
		{"covered dropped", []string{"198.51.100.0/24", "198.51.100.7/32"}, false, "198.51.100.0/24"},
		{"adjacent not a prefix", []string{"192.0.2.0/25", "192.0.2.128/26"}, false, "192.0.2.0-192.0.2.191"},
		{"disjoint sorted", []string{"203.0.113.9/32", "192.0.2.1/32"}, false, "192.0.2.1 203.0.113.9"},
		{"family filter", []string{"192.0.2.1/32", "2001:db8::/48"}, true, "2001:db8::/48"},
		{"top of the space", []string{"255.255.255.0/24", "255.255.254.0/24"}, false, "255.255.254.0/23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tt.in {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			var got []string
			for _, r := range mergeRanges(ps, tt.v6) {
				got = append(got, r.String())
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("mergeRanges(%v) = %q, want %q", tt.in, s, tt.want)
			}
		})
	}
}

func TestIntervalElementsEndAtTheTop(t *testing.T) {
	rs := mergeRanges([]netip.Prefix{netip.MustParsePrefix("255.255.255.0/24")}, false)
	es := intervalElements(rs, false)
	// 0.0.0.0 (end), 255.255.255.0 (start), and no end past the last address.
	if len(es) != 2 || !es[0].IntervalEnd || es[1].IntervalEnd {
		t.Errorf("intervalElements(255.255.255.0/24) = %+v, want a zero end and one start", es)
	}
}
