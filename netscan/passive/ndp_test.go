package passive

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/patchgate/patchgate/netscan"
)

var (
	ndpMAC    = net.HardwareAddr{0x00, 0x1b, 0x54, 0x10, 0x20, 0x30}
	ndpOther  = net.HardwareAddr{0x00, 0x1b, 0x54, 0x99, 0x99, 0x99}
	ndpAddr   = netip.MustParseAddr("2001:db8:30::10")
	ndpTarget = netip.MustParseAddr("2001:db8:30::1")
)

// ndpFrame builds an Ethernet frame holding an IPv6 neighbour solicitation (typ 135)
// or advertisement (136) with gopacket's own layers, checksums and all.
func ndpFrame(t *testing.T, typ uint8, src netip.Addr, hopLimit uint8, target netip.Addr, opts layers.ICMPv6Options) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: hopLimit,
		SrcIP: src.AsSlice(), DstIP: net.ParseIP("ff02::1:ff00:1")}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	var body gopacket.SerializableLayer
	if typ == layers.ICMPv6TypeNeighborSolicitation {
		body = &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice(), Options: opts}
	} else {
		body = &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: target.AsSlice(), Options: opts}
	}
	return serialize(t,
		&layers.Ethernet{SrcMAC: ndpOther, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv6},
		ip, icmp, body)
}

// TestDecodeNDP: neighbour solicitations name their sender, advertisements their
// target, each with the MAC of its link-layer address option.
func TestDecodeNDP(t *testing.T) {
	srcLL := layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: ndpMAC}}
	tgtLL := layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: ndpMAC}}
	want := func(a netip.Addr) []netscan.Observation {
		return []netscan.Observation{{Time: frameTime, Source: netscan.SourceNDP, Interface: "eth0", MAC: netscan.MACFrom(ndpMAC), Addr: a}}
	}
	tests := []struct {
		name    string
		frame   func(t *testing.T) []byte
		want    []netscan.Observation
		wantErr bool
	}{
		{"solicitation names its sender", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, ndpAddr, 255, ndpTarget, srcLL)
		}, want(ndpAddr), false},
		{"advertisement names its target", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborAdvertisement, netip.MustParseAddr("fe80::21b:54ff:fe10:2030"), 255, ndpAddr, tgtLL)
		}, want(ndpAddr), false},
		{"link-local sender", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, netip.MustParseAddr("fe80::21b:54ff:fe10:2030"), 255, ndpTarget, srcLL)
		}, want(netip.MustParseAddr("fe80::21b:54ff:fe10:2030")), false},
		{"duplicate address detection from :: gives nothing", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, netip.IPv6Unspecified(), 255, ndpAddr, nil)
		}, nil, false},
		{"solicitation without the option gives nothing", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, ndpAddr, 255, ndpTarget, nil)
		}, nil, false},
		{"advertisement with only a source option gives nothing", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborAdvertisement, ndpAddr, 255, ndpAddr, srcLL)
		}, nil, false},
		{"hop limit below 255 was routed: ignored", func(t *testing.T) []byte {
			return ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, ndpAddr, 64, ndpTarget, srcLL)
		}, nil, false},
		{"zero-length option is malformed", func(t *testing.T) []byte {
			f := ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, ndpAddr, 255, ndpTarget, srcLL)
			f[14+40+24+1] = 0
			return f
		}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []netscan.Observation
			n, err := NewDecoder("eth0").Decode(tt.frame(t), frameTime, func(o netscan.Observation) { got = append(got, o) })
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("Decode = %d, %v; want an ErrMalformed error: %v", n, err, tt.wantErr)
			}
			if n != len(got) {
				t.Errorf("Decode returned %d, emitted %d", n, len(got))
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFilterAcceptsNDP: the capture's BPF program lets neighbour solicitations and
// advertisements through, and no other ICMPv6.
func TestFilterAcceptsNDP(t *testing.T) {
	vm, err := bpf.NewVM(Filter(DefaultSnaplen))
	if err != nil {
		t.Fatal(err)
	}
	echo := serialize(t,
		&layers.Ethernet{SrcMAC: ndpOther, DstMAC: ndpMAC, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: ndpAddr.AsSlice(), DstIP: ndpTarget.AsSlice()},
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		gopacket.Payload(make([]byte, 8)))
	tests := []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"solicitation", ndpFrame(t, layers.ICMPv6TypeNeighborSolicitation, ndpAddr, 255, ndpTarget, nil), true},
		{"advertisement", ndpFrame(t, layers.ICMPv6TypeNeighborAdvertisement, ndpAddr, 255, ndpAddr, nil), true},
		{"echo request", echo, false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.frame)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n > 0; got != tt.want {
			t.Errorf("%s: filter accepts = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzParseNDP: ParseNDP never panics, and what it returns is a usable address at a
// unicast MAC.
func FuzzParseNDP(f *testing.F) {
	f.Add(ndpAddr.AsSlice(), []byte{135, 0, 0, 0, 0, 0, 0, 0, 0x20, 1, 0xd, 0xb8, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0x1b, 0x54, 0x10, 0x20, 0x30})
	f.Add(ndpAddr.AsSlice(), []byte{136, 0, 0, 0, 0x60, 0, 0, 0, 0x20, 1, 0xd, 0xb8, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 2, 1, 0, 0x1b, 0x54, 0x10, 0x20, 0x30})
	f.Fuzz(func(t *testing.T, src, b []byte) {
		a, _ := netip.AddrFromSlice(src)
		n, ok, err := ParseNDP(a, b)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("error %v does not wrap ErrMalformed", err)
		}
		if ok && (!n.Addr.IsValid() || n.Addr.IsUnspecified() || !n.MAC.Unicast()) {
			t.Errorf("ParseNDP = %+v, want a usable address and a unicast MAC", n)
		}
	})
}
