package passive

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/patchgate/patchgate/netscan"
)

// ICMPv6 neighbour discovery (RFC 4861): the IPv6 counterpart of ARP. Neighbour
// solicitations carry the sender's link-layer address (option 1) for its source
// address; advertisements carry the target's link-layer address (option 2) for the
// target address. Both map an IPv6 address to a MAC, which is what lets the inventory
// name a device by its IPv6 address (the gateway's deny log, the resolver's query log).
const (
	protoICMPv6      = 58
	icmp6NeighSolic  = 135
	icmp6NeighAdvert = 136
	ndOptSourceLL    = 1
	ndOptTargetLL    = 2
)

// NDP is the neighbour discovery fact a frame gave: addr is at mac.
type NDP struct {
	Addr netip.Addr
	MAC  netscan.MAC
}

// ParseNDP reads an ICMPv6 message (from its type byte on) sent from src: a neighbour
// solicitation with a source link-layer address option gives src at that address (a
// duplicate address detection probe, from ::, gives nothing), an advertisement with a
// target link-layer address option gives the target at that address. Other messages
// give ok false. A message that claims to be one of the two but does not parse is an
// error wrapping ErrMalformed. It never panics (FuzzParseNDP) and does not allocate.
func ParseNDP(src netip.Addr, b []byte) (n NDP, ok bool, err error) {
	if len(b) < 1 || (b[0] != icmp6NeighSolic && b[0] != icmp6NeighAdvert) {
		return NDP{}, false, nil
	}
	// type, code, checksum, reserved or flags, target address
	if len(b) < 24 {
		return NDP{}, false, fmt.Errorf("%w: ndp: %d bytes", ErrMalformed, len(b))
	}
	if b[1] != 0 {
		return NDP{}, false, fmt.Errorf("%w: ndp: code %d", ErrMalformed, b[1])
	}
	target := netip.AddrFrom16([16]byte(b[8:24]))
	want, addr := byte(ndOptSourceLL), src
	if b[0] == icmp6NeighAdvert {
		want, addr = ndOptTargetLL, target
	}
	for opts := b[24:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return NDP{}, false, fmt.Errorf("%w: ndp: option length", ErrMalformed)
		}
		l := int(opts[1]) * 8
		if opts[0] == want && l == 8 { // an Ethernet address: type, length, 6 bytes
			n.MAC = netscan.MACFrom(opts[2:8])
		}
		opts = opts[l:]
	}
	if n.MAC.IsZero() || !n.MAC.Unicast() || !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() {
		return NDP{}, false, nil
	}
	n.Addr = addr
	return n, true, nil
}

// decodeNDP emits the observation of an NDP frame: the address and the MAC its
// link-layer option names (not the frame's source: a proxy or router may send for
// another host). Only messages with hop limit 255, as RFC 4861 requires, count.
func (d *Decoder) decodeNDP(t time.Time, src netip.Addr, emit func(netscan.Observation)) (int, error) {
	if d.ip6.NextHeader != protoICMPv6 || d.ip6.HopLimit != 255 {
		return 0, nil
	}
	n, ok, err := ParseNDP(src, d.ip6.Payload)
	if err != nil || !ok {
		return 0, err
	}
	o := d.newObs(t, netscan.SourceNDP)
	o.MAC, o.Addr = n.MAC, n.Addr.WithZone("")
	emit(o)
	return 1, nil
}
