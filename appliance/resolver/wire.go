package resolver

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// unpackQuery fills m, a zero Msg, from pkt exactly as m.Unpack(pkt) would, for the
// shape nearly every stub query has: one question whose name is plain letters, digits,
// '-' and '_' (no compression, nothing to escape), no answer or authority records, and
// at most an OPT record without options, nothing after it. It returns false for
// anything else, which m.Unpack then parses. The question and OPT go in the room the
// caller passes (the pooled request's), so a query costs one allocation, its name,
// where m.Unpack makes five (the question slice, the name, the extra slice, the OPT and
// its name). FuzzUnpackQuery checks it against m.Unpack.
func unpackQuery(m *dns.Msg, pkt []byte, q *[1]dns.Question, opt *dns.OPT, extra *[1]dns.RR) bool {
	if len(pkt) < 12 {
		return false
	}
	be := binary.BigEndian
	if be.Uint16(pkt[4:]) != 1 || be.Uint16(pkt[6:]) != 0 || be.Uint16(pkt[8:]) != 0 || be.Uint16(pkt[10:]) > 1 {
		return false
	}
	arcount := be.Uint16(pkt[10:])
	// The name: labels of 1-63 plain bytes, at most 255 bytes on the wire.
	off := 12
	for {
		if off >= len(pkt) {
			return false
		}
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(pkt) {
			return false // a compression pointer, a reserved label type, or cut short
		}
		for _, c := range pkt[off+1 : off+1+l] {
			if !plainNameByte(c) {
				return false
			}
		}
		off += 1 + l
	}
	nameEnd := off
	if nameEnd-12 > 255 || off+4 > len(pkt) {
		return false
	}
	qtype, qclass := be.Uint16(pkt[off:]), be.Uint16(pkt[off+2:])
	off += 4
	var optHdr dns.RR_Header
	if arcount == 1 {
		// Root owner, type OPT, no options.
		if off+11 != len(pkt) || pkt[off] != 0 || be.Uint16(pkt[off+1:]) != dns.TypeOPT || be.Uint16(pkt[off+9:]) != 0 {
			return false
		}
		optHdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: be.Uint16(pkt[off+3:]), Ttl: be.Uint32(pkt[off+5:])}
		off += 11
	}
	if off != len(pkt) {
		return false
	}

	name := "."
	if nameEnd-12 > 1 {
		var b strings.Builder
		b.Grow(nameEnd - 12 - 1)
		for i := 12; pkt[i] != 0; i += 1 + int(pkt[i]) {
			b.Write(pkt[i+1 : i+1+int(pkt[i])])
			b.WriteByte('.')
		}
		name = b.String()
	}
	bits := be.Uint16(pkt[2:])
	m.Id = be.Uint16(pkt)
	m.Response = bits&(1<<15) != 0
	m.Opcode = int(bits>>11) & 0xF
	m.Authoritative = bits&(1<<10) != 0
	m.Truncated = bits&(1<<9) != 0
	m.RecursionDesired = bits&(1<<8) != 0
	m.RecursionAvailable = bits&(1<<7) != 0
	m.Zero = bits&(1<<6) != 0
	m.AuthenticatedData = bits&(1<<5) != 0
	m.CheckingDisabled = bits&(1<<4) != 0
	m.Rcode = int(bits & 0xF)
	q[0] = dns.Question{Name: name, Qtype: qtype, Qclass: qclass}
	m.Question = q[:]
	if arcount == 1 {
		*opt = dns.OPT{Hdr: optHdr}
		extra[0] = opt
		m.Extra = extra[:]
		m.Rcode |= opt.ExtendedRcode()
	}
	return true
}

// plainNameByte reports whether c stands for itself in a name's text form (m.Unpack
// escapes none of these).
func plainNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// AnswerAddr is the address an answer record carries: an A record's IPv4 address, an
// AAAA record's IPv6 one (an IPv4-mapped address stays mapped), the zero Addr for any
// other record. The resolver's rebinding check and the gateway's egress lookups read
// answers with it.
func AnswerAddr(rr dns.RR) netip.Addr {
	var a netip.Addr
	switch v := rr.(type) {
	case *dns.A:
		a, _ = netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		a, _ = netip.AddrFromSlice(v.AAAA)
	}
	return a
}
