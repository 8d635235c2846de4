package passive

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/patchgate/patchgate/netscan"
)

// NetBIOS name service opcodes (RFC 1002 4.2.1.1).
const (
	nbnsOpQuery        = 0
	nbnsOpRegistration = 5
	nbnsOpRefresh      = 8
	nbnsOpRefreshAlt   = 9
	nbnsTypeNB         = 0x20
	nbnsClassIN        = 1
)

// ParseNBNS reads a NetBIOS name service message (a UDP payload) into o:
// the name a host registers or refreshes, or the answer to a name query, and
// the address it gives. It reports whether the message said anything about
// a host; queries and releases give false, nil.
func ParseNBNS(b []byte, o *netscan.Observation) (bool, error) {
	if len(b) < 12 {
		return false, fmt.Errorf("%w: netbios: %d bytes, want at least 12", ErrMalformed, len(b))
	}
	flags := binary.BigEndian.Uint16(b[2:])
	response := flags&0x8000 != 0
	opcode := (flags >> 11) & 0xf
	rcode := flags & 0xf
	qd, an, ns, ar := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	if int(qd)+int(an)+int(ns)+int(ar) > 8 {
		return false, fmt.Errorf("%w: netbios: %d records", ErrMalformed, int(qd)+int(an)+int(ns)+int(ar))
	}
	off := 12
	var (
		name   string
		suffix byte
		err    error
	)
	switch {
	case !response && (opcode == nbnsOpRegistration || opcode == nbnsOpRefresh || opcode == nbnsOpRefreshAlt) && qd == 1 && ar == 1:
		// Question: the name; additional record: TTL, NB_FLAGS and address.
		if name, suffix, off, err = nbName(b, off); err != nil {
			return false, err
		}
		if off+4 > len(b) {
			return false, fmt.Errorf("%w: netbios: truncated question", ErrMalformed)
		}
		off += 4
		if _, _, off, err = nbName(b, off); err != nil {
			return false, err
		}
	case response && opcode == nbnsOpQuery && rcode == 0 && an >= 1 && qd == 0:
		if name, suffix, off, err = nbName(b, off); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	// Resource record after its name: TYPE, CLASS, TTL, RDLENGTH, RDATA.
	if off+10 > len(b) {
		return false, fmt.Errorf("%w: netbios: truncated record", ErrMalformed)
	}
	typ, class, rdlen := binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:]), int(binary.BigEndian.Uint16(b[off+8:]))
	off += 10
	if typ != nbnsTypeNB || class != nbnsClassIN {
		return false, nil
	}
	if rdlen < 6 || off+rdlen > len(b) {
		return false, fmt.Errorf("%w: netbios: rdata length %d", ErrMalformed, rdlen)
	}
	nbFlags := binary.BigEndian.Uint16(b[off:])
	if ip := netip.AddrFrom4([4]byte(b[off+2 : off+6])); !ip.IsUnspecified() {
		o.Addr = ip
	}
	group := nbFlags&0x8000 != 0
	switch {
	case group && suffix == 0x00:
		o.Add(netscan.KeyNetBIOSGroup, name)
	case !group && (suffix == 0x00 || suffix == 0x20):
		o.Add(netscan.KeyNetBIOSName, name)
		o.Add(netscan.KeyHostname, name)
	default:
		return false, nil // browser and domain-controller names say little of the host
	}
	return true, nil
}

// nbName decodes a first-level encoded NetBIOS name (RFC 1001 14.1) at off,
// or skips a compression pointer, and returns the name, its suffix byte and
// the offset after it.
func nbName(b []byte, off int) (string, byte, int, error) {
	if off >= len(b) {
		return "", 0, 0, fmt.Errorf("%w: netbios: name past end", ErrMalformed)
	}
	if b[off]&0xc0 == 0xc0 {
		if off+2 > len(b) {
			return "", 0, 0, fmt.Errorf("%w: netbios: truncated pointer", ErrMalformed)
		}
		return "", 0, off + 2, nil
	}
	if b[off] != 32 || off+1+32 > len(b) {
		return "", 0, 0, fmt.Errorf("%w: netbios: name label length %d", ErrMalformed, b[off])
	}
	var raw [16]byte
	for i := range raw {
		hi, lo := b[off+1+2*i]-'A', b[off+2+2*i]-'A'
		if hi > 15 || lo > 15 {
			return "", 0, 0, fmt.Errorf("%w: netbios: name encoding", ErrMalformed)
		}
		raw[i] = hi<<4 | lo
	}
	off += 33
	// Scope labels, then the root label.
	for {
		if off >= len(b) {
			return "", 0, 0, fmt.Errorf("%w: netbios: unterminated name", ErrMalformed)
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(b) {
			return "", 0, 0, fmt.Errorf("%w: netbios: scope label length %d", ErrMalformed, l)
		}
		off += l
	}
	return strings.TrimRight(string(raw[:15]), " \x00"), raw[15], off, nil
}
