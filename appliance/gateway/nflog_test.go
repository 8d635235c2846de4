package gateway

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nflogMsg builds an NFULNL_MSG_PACKET payload as the kernel sends it.
func nflogMsg(t testing.TB, prefix string, packet []byte) []byte {
	t.Helper()
	attrs := []netlink.Attribute{
		{Type: nfulaPacketHdr, Data: []byte{0x08, 0x00, 2, 0}},
		{Type: nfulaIfIndexIn, Data: binary.BigEndian.AppendUint32(nil, 3)},
		{Type: nfulaPrefix, Data: append([]byte(prefix), 0)},
		{Type: nfulaPayload, Data: packet},
	}
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{unix.AF_INET, 0, 0, 17}, b...)
}

// ipPacket builds an IPv4 or IPv6 header (by src's family) and the ports of a
// transport header after it.
func ipPacket(src, dst string, proto byte, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	hdr, addrs := 20, 12 // IPv4: the header's length, where the addresses start
	if s.Is6() {
		hdr, addrs = 40, 8
	}
	p := make([]byte, hdr+8)
	if s.Is4() {
		p[0], p[9] = 0x45, proto
	} else {
		p[0], p[6] = 0x60, proto
	}
	n := copy(p[addrs:], s.AsSlice())
	copy(p[addrs+n:], d.AsSlice())
	binary.BigEndian.PutUint16(p[hdr:], sport)
	binary.BigEndian.PutUint16(p[hdr+2:], dport)
	return p
}

func TestParseNFLOG(t *testing.T) {
	tests := []struct {
		name    string
		msg     []byte
		want    logEntry
		wantSeg string
		ours    bool
		wantErr bool
	}{
		{
			name: "segment tcp",
			msg:  nflogMsg(t, "patchgate deny segment devices ", ipPacket("10.30.0.10", "203.0.113.20", unix.IPPROTO_TCP, 40000, 443)),
			want: logEntry{Prefix: "patchgate deny segment devices ", InIf: 3, Src: netip.MustParseAddr("10.30.0.10"),
				Dst: netip.MustParseAddr("203.0.113.20"), Proto: unix.IPPROTO_TCP, SrcPort: 40000, DstPort: 443},
			wantSeg: "devices", ours: true,
		},
		{
			name: "output udp v6",
			msg:  nflogMsg(t, "patchgate deny output ", ipPacket("2001:db8::1", "2001:db8::99", unix.IPPROTO_UDP, 5000, 53)),
			want: logEntry{Prefix: "patchgate deny output ", InIf: 3, Src: netip.MustParseAddr("2001:db8::1"),
				Dst: netip.MustParseAddr("2001:db8::99"), Proto: unix.IPPROTO_UDP, SrcPort: 5000, DstPort: 53},
			ours: true,
		},
		{
			name: "another rule's prefix",
			msg:  nflogMsg(t, "someone else ", ipPacket("10.0.0.1", "10.0.0.2", unix.IPPROTO_ICMP, 0, 0)),
			want: logEntry{Prefix: "someone else ", InIf: 3, Src: netip.MustParseAddr("10.0.0.1"),
				Dst: netip.MustParseAddr("10.0.0.2"), Proto: unix.IPPROTO_ICMP},
		},
		{name: "short", msg: []byte{2, 0}, wantErr: true},
		{name: "truncated ipv4", msg: nflogMsg(t, "x", []byte{0x45, 0, 0}), wantErr: true},
		{name: "bad version", msg: nflogMsg(t, "x", make([]byte, 40)), wantErr: true},
		{name: "bad attribute length", msg: []byte{2, 0, 0, 17, 0xff, 0, 9, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNFLOG(tt.msg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseNFLOG err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("parseNFLOG (-want +got):\n%s", diff)
			}
			seg, ours := got.segment()
			if seg != tt.wantSeg || ours != tt.ours {
				t.Errorf("segment() = %q, %v; want %q, %v", seg, ours, tt.wantSeg, tt.ours)
			}
		})
	}
}

// FuzzParseNFLOG: parseNFLOG never panics on any bytes from the netlink socket, and
// whatever it accepts has a source and destination of one IP family.
func FuzzParseNFLOG(f *testing.F) {
	f.Add(nflogMsg(f, "patchgate deny segment devices ", ipPacket("10.30.0.10", "203.0.113.20", unix.IPPROTO_TCP, 1, 443)))
	f.Add(nflogMsg(f, "patchgate deny output ", ipPacket("2001:db8::1", "2001:db8::2", unix.IPPROTO_UDP, 1, 53)))
	f.Add(nflogMsg(f, "", []byte{0x4f}))
	f.Add([]byte{2, 0, 0, 17, 8, 0, 9, 0, 0x60, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseNFLOG(b)
		if err != nil {
			return
		}
		if !e.Src.IsValid() || !e.Dst.IsValid() || e.Src.Is4() != e.Dst.Is4() {
			t.Fatalf("parseNFLOG accepted %x with src %v dst %v", b, e.Src, e.Dst)
		}
		e.segment()
	})
}
