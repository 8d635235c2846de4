package gateway

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A term is one piece of a rule: a match or a statement. Each term renders itself both
// as nft text and as the netlink expressions nft would generate for that text, side by
// side, so that the dry-run and the applied ruleset come from the same values. The
// namespace test loads both into the kernel and compares `nft list` of the two.
type term interface {
	text() string
	exprs(b *binder) []expr.Any
}

// binder resolves set names to the sets of the batch being built (lookups need the
// set's batch ID). A nil binder is fine for terms that reference no set.
type binder struct {
	setIDs map[string]uint32
}

func (b *binder) setID(name string) uint32 {
	if b == nil {
		return 0
	}
	return b.setIDs[name]
}

// ifnameMatch is `iifname "eth1"` / `oifname "eth1"`.
type ifnameMatch struct {
	out  bool
	name string
}

func (m ifnameMatch) text() string {
	if m.out {
		return "oifname " + strconv.Quote(m.name)
	}
	return "iifname " + strconv.Quote(m.name)
}

func (m ifnameMatch) exprs(*binder) []expr.Any {
	key := expr.MetaKeyIIFNAME
	if m.out {
		key = expr.MetaKeyOIFNAME
	}
	data := make([]byte, unix.IFNAMSIZ) // nft compares the whole NUL-padded name
	copy(data, m.name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// ctStateMatch is `ct state established,related` (any of the bits).
type ctStateMatch struct{ bits uint32 }

const (
	ctInvalid     = 1 // NF_CT_STATE_INVALID_BIT
	ctEstablished = 2 // NF_CT_STATE_BIT(IP_CT_ESTABLISHED)
	ctRelated     = 4 // NF_CT_STATE_BIT(IP_CT_RELATED)
)

func (m ctStateMatch) text() string {
	var names []string
	for _, s := range []struct {
		bit  uint32
		name string
	}{{ctInvalid, "invalid"}, {ctEstablished, "established"}, {ctRelated, "related"}} {
		if m.bits&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return "ct state " + strings.Join(names, ",")
}

func (m ctStateMatch) exprs(*binder) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, m.bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// nfproto loads meta nfproto and compares it: the dependency nft adds before an ip or
// ip6 match in an inet table.
func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func nfprotoText(v6 bool) string {
	if v6 {
		return "meta nfproto ipv6"
	}
	return "meta nfproto ipv4"
}

// addrField loads the source or destination address of the IPv4 or IPv6 header.
func addrField(dst, v6 bool, n uint32) *expr.Payload {
	off := uint32(12) // IPv4 saddr
	switch {
	case v6 && dst:
		off = 24
	case v6:
		off = 8
	case dst:
		off = 16
	}
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

func addrKeyword(dst, v6 bool) string {
	s := "ip "
	if v6 {
		s = "ip6 "
	}
	if dst {
		return s + "daddr"
	}
	return s + "saddr"
}

// prefixMatch is `ip saddr 10.30.0.0/24`, `ip6 daddr 2001:db8::1`. Like nft, it loads
// only the bytes a byte-aligned prefix covers, and the whole address under a mask
// otherwise.
type prefixMatch struct {
	dst    bool
	prefix netip.Prefix
}

func (m prefixMatch) text() string {
	p := m.prefix.Masked()
	if p.Bits() == 0 { // every address of the family
		return nfprotoText(p.Addr().Is6())
	}
	s := p.Addr().String()
	if p.Bits() != p.Addr().BitLen() {
		s = p.String()
	}
	return addrKeyword(m.dst, p.Addr().Is6()) + " " + s
}

func (m prefixMatch) exprs(*binder) []expr.Any {
	p := m.prefix.Masked()
	v6 := p.Addr().Is6()
	addr := p.Addr().AsSlice()
	if p.Bits() == 0 {
		return nfproto(v6)
	}
	if p.Bits()%8 == 0 {
		n := p.Bits() / 8
		return append(nfproto(v6), addrField(m.dst, v6, uint32(n)),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]})
	}
	mask := make([]byte, len(addr))
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return append(nfproto(v6), addrField(m.dst, v6, uint32(len(addr))),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)), Mask: mask, Xor: make([]byte, len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
}

// setMatch is `ip daddr @name`.
type setMatch struct {
	dst bool
	v6  bool
	set string
}

func (m setMatch) text() string { return addrKeyword(m.dst, m.v6) + " @" + m.set }

func (m setMatch) exprs(b *binder) []expr.Any {
	n := uint32(4)
	if m.v6 {
		n = 16
	}
	return append(nfproto(m.v6), addrField(m.dst, m.v6, n),
		&expr.Lookup{SourceRegister: 1, SetName: m.set, SetID: b.setID(m.set)})
}

// pairMatch is `ip saddr . ip daddr @name`: the source and destination addresses
// together, looked up in a set keyed by both. Like nft, it loads the two addresses
// into adjacent registers (the second of an IPv4 pair into the 32-bit register 9,
// of an IPv6 pair into register 2).
type pairMatch struct {
	v6  bool
	set string
}

func (m pairMatch) text() string {
	return addrKeyword(false, m.v6) + " . " + addrKeyword(true, m.v6) + " @" + m.set
}

func (m pairMatch) exprs(b *binder) []expr.Any {
	n, second := uint32(4), uint32(unix.NFT_REG32_01)
	if m.v6 {
		n, second = 16, unix.NFT_REG_2
	}
	dst := addrField(true, m.v6, n)
	dst.DestRegister = second
	return append(nfproto(m.v6), addrField(false, m.v6, n), dst,
		&expr.Lookup{SourceRegister: 1, SetName: m.set, SetID: b.setID(m.set)})
}

// Transport protocols the rules name.
const (
	protoTCP    = unix.IPPROTO_TCP
	protoUDP    = unix.IPPROTO_UDP
	protoICMPv6 = unix.IPPROTO_ICMPV6
)

// dportMatch is `udp dport 53`.
type dportMatch struct {
	proto byte
	port  uint16
}

func (m dportMatch) text() string {
	name := "tcp"
	if m.proto == protoUDP {
		name = "udp"
	}
	return name + " dport " + strconv.Itoa(int(m.port))
}

func (m dportMatch) exprs(*binder) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, m.port)},
	}
}

// icmpv6TypeMatch is `icmpv6 type nd-neighbor-solicit`.
type icmpv6TypeMatch struct{ typ byte }

var icmpv6Names = map[byte]string{
	133: "nd-router-solicit",
	135: "nd-neighbor-solicit",
	136: "nd-neighbor-advert",
}

func (m icmpv6TypeMatch) text() string {
	if n, ok := icmpv6Names[m.typ]; ok {
		return "icmpv6 type " + n
	}
	return "icmpv6 type " + strconv.Itoa(int(m.typ))
}

func (m icmpv6TypeMatch) exprs(*binder) []expr.Any {
	return append(nfproto(true),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoICMPv6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.typ}},
	)
}

// counterStmt is `counter name "x"` (a named counter object), or an anonymous
// `counter` when name is empty.
type counterStmt struct{ name string }

func (s counterStmt) text() string {
	if s.name == "" {
		return "counter"
	}
	return "counter name " + strconv.Quote(s.name)
}

func (s counterStmt) exprs(*binder) []expr.Any {
	if s.name == "" {
		return []expr.Any{&expr.Counter{}}
	}
	return []expr.Any{&expr.Objref{Type: int(unix.NFT_OBJECT_COUNTER), Name: s.name}}
}

// logStmt is `limit rate N/second log prefix "..." group G`: at most rate lines a
// second (burst 5, nft's default) go to the NFLOG group.
type logStmt struct {
	rate   int
	prefix string
	group  uint16
}

func (s logStmt) text() string {
	return fmt.Sprintf("limit rate %d/second log prefix %s group %d", s.rate, strconv.Quote(s.prefix), s.group)
}

func (s logStmt) exprs(*binder) []expr.Any {
	return []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(s.rate), Unit: expr.LimitTimeSecond, Burst: 5},
		&expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_GROUP, Data: []byte(s.prefix), Group: s.group},
	}
}

// verdict is accept, drop, jump CHAIN or goto CHAIN.
type verdict struct {
	kind  expr.VerdictKind
	chain string
}

var (
	accept = verdict{kind: expr.VerdictAccept}
	drop   = verdict{kind: expr.VerdictDrop}
)

func gotoChain(c string) verdict { return verdict{kind: expr.VerdictGoto, chain: c} }

func (v verdict) text() string {
	switch v.kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump " + v.chain
	default:
		return "goto " + v.chain
	}
}

func (v verdict) exprs(*binder) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: v.kind, Chain: v.chain}}
}

// rejectStmt is `reject with icmpx admin-prohibited`: the client learns at once that
// policy, not the network, refused it.
type rejectStmt struct{}

func (rejectStmt) text() string { return "reject with icmpx admin-prohibited" }

func (rejectStmt) exprs(*binder) []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
}
