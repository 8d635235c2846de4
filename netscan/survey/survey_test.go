package survey

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/netscan"
)

func TestGroup(t *testing.T) {
	printer := netscan.MAC{0, 7, 0x4d, 1, 2, 3}
	phone := netscan.MAC{0x7a, 1, 2, 3, 4, 5}
	a10, a20, a30 := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.30")
	obs := []netscan.Observation{
		{Source: netscan.SourceTCP, Addr: a10, Facts: []netscan.Fact{{Key: netscan.KeyTCPOpen, Value: "9100"}}},
		{Source: netscan.SourceARP, MAC: printer, Addr: a10},
		{Source: netscan.SourceDHCP, MAC: phone, Facts: []netscan.Fact{{Key: netscan.KeyHostname, Value: "pixel"}}},
		{Source: netscan.SourceARPSweep, MAC: phone, Addr: a20},
		{Source: netscan.SourceHTTP, Addr: a30, Facts: []netscan.Fact{{Key: netscan.KeyHTTPTitle, Value: "Router"}}},
		{Source: netscan.SourceARP, MAC: netscan.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Addr: a30},
	}
	got := Group(obs)
	want := []Device{
		{MAC: printer, Addrs: []netip.Addr{a10}, Sources: []netscan.Source{"arp", "tcp"}, Facts: []netscan.Fact{{Key: netscan.KeyTCPOpen, Value: "9100"}}},
		{MAC: phone, Random: true, Addrs: []netip.Addr{a20}, Hostnames: []string{"pixel"}, Sources: []netscan.Source{"arp-sweep", "dhcp"}, Facts: []netscan.Fact{{Key: netscan.KeyHostname, Value: "pixel"}}},
		{Addrs: []netip.Addr{a30}, Sources: []netscan.Source{"arp", "http"}, Facts: []netscan.Fact{{Key: netscan.KeyHTTPTitle, Value: "Router"}}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Group (-want +got):\n%s", diff)
	}
}
