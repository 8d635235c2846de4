package segment

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/conf"
)

func testTable() *Table {
	return NewTable(Section{
		{Name: "management", Interface: "eth1", VLAN: 10, Addresses: []conf.Prefix{conf.MustPrefix("10.10.0.1/24")},
			Clients: []conf.Prefix{conf.MustPrefix("10.10.0.0/24")}, Services: []string{ServiceAdmin}},
		{Name: "devices", Clients: []conf.Prefix{conf.MustPrefix("10.30.0.0/16"), conf.MustPrefix("fd00:30::/64")}},
		{Name: "robots", Clients: []conf.Prefix{conf.MustPrefix("10.40.0.0/24")}, Services: []string{}},
	})
}

func TestTableLookup(t *testing.T) {
	tab := testTable()
	tests := []struct {
		name, addr, want string
	}{
		{"management", "10.10.0.7", "management"},
		{"devices v4", "10.30.200.1", "devices"},
		{"devices v6", "fd00:30::9", "devices"},
		{"mapped v4", "::ffff:10.30.0.9", "devices"},
		{"no services still has a segment", "10.40.0.2", "robots"},
		{"elsewhere", "192.0.2.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tab.NameOf(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("NameOf(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestTableQueries(t *testing.T) {
	tab := testTable()
	if s, ok := tab.Named("management"); !ok || s.Device() != "eth1.10" {
		t.Errorf("Named(management) = %+v, %v; want the segment on eth1.10", s, ok)
	}
	if _, ok := tab.Named("lab"); ok {
		t.Error("Named(lab) found a segment that is not configured")
	}
	tests := []struct {
		name     string
		services []string
		want     []string
	}{
		{"admin", []string{ServiceAdmin}, []string{"10.10.0.0/24"}},
		{"distribution or agent", []string{ServiceDistribution, ServiceAgent}, []string{"10.30.0.0/16", "fd00:30::/64"}},
		{"every segment", nil, []string{"10.10.0.0/24", "10.30.0.0/16", "fd00:30::/64", "10.40.0.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range tab.Clients(tt.services...) {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Clients(%v) (-want +got):\n%s", tt.services, diff)
			}
		})
	}
	if got := tab.Addresses(); len(got) != 1 || got[0].String() != "10.10.0.1/24" {
		t.Errorf("Addresses() = %v, want [10.10.0.1/24]", got)
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if tab.Len() != 0 || tab.NameOf(netip.MustParseAddr("10.0.0.1")) != "" || tab.Clients() != nil {
		t.Error("a nil Table has segments, want none")
	}
}
