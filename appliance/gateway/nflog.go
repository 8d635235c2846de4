package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The deny rules log through NFLOG (limited per segment by the rule's own limit), and
// the gateway reads the group back over netlink, so a log line can carry the device's
// inventory name rather than only its address. Constants from linux/netfilter/
// nfnetlink_log.h, which x/sys/unix does not carry.
const (
	nfulnlMsgPacket = 0
	nfulnlMsgConfig = 1

	nfulaCfgCmd    = 1
	nfulaCfgMode   = 2
	nfulaCfgQThres = 5

	nfulnlCfgCmdBind = 1
	nfulnlCopyPacket = 2

	nfulaPacketHdr = 1
	nfulaIfIndexIn = 4
	nfulaPayload   = 9
	nfulaPrefix    = 10

	// nflogCopy is how much of each packet is copied: enough for the IP and
	// transport headers.
	nflogCopy = 96
)

// nflogReader receives the packets logged to one NFLOG group.
type nflogReader struct {
	conn *netlink.Conn
}

// openNFLOG binds NFLOG group in the namespace netns (0: the process's own).
func openNFLOG(group uint16, netns int) (*nflogReader, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("nflog: dial: %w", err)
	}
	mode := binary.BigEndian.AppendUint32(nil, nflogCopy)
	mode = append(mode, nfulnlCopyPacket, 0)
	for _, attrs := range [][]netlink.Attribute{
		{{Type: nfulaCfgCmd, Data: []byte{nfulnlCfgCmdBind}}},
		{{Type: nfulaCfgMode, Data: mode}, {Type: nfulaCfgQThres, Data: binary.BigEndian.AppendUint32(nil, 1)}},
	} {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			conn.Close()
			return nil, err
		}
		hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, byte(group >> 8), byte(group)}
		msg := netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8 | nfulnlMsgConfig),
				Flags: netlink.Request | netlink.Acknowledge,
			},
			Data: append(hdr, b...),
		}
		if _, err := conn.Execute(msg); err != nil {
			conn.Close()
			return nil, fmt.Errorf("nflog: bind group %d: %w", group, err)
		}
	}
	return &nflogReader{conn: conn}, nil
}

// receive blocks until logged packets arrive and returns them parsed; unparseable
// messages are skipped.
func (r *nflogReader) receive() ([]logEntry, error) {
	msgs, err := r.conn.Receive()
	if err != nil {
		return nil, err
	}
	var out []logEntry
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_ULOG<<8|nfulnlMsgPacket) {
			continue
		}
		if e, err := parseNFLOG(m.Data); err == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func (r *nflogReader) close() error { return r.conn.Close() }

// logEntry is one logged packet: the rule's prefix and the packet's addresses.
type logEntry struct {
	Prefix  string
	InIf    uint32
	Src     netip.Addr
	Dst     netip.Addr
	Proto   uint8 // IPPROTO_*
	SrcPort uint16
	DstPort uint16
}

// segment is the segment named in the prefix, and whether the prefix is one of ours;
// the appliance's own output is segment "".
func (e logEntry) segment() (string, bool) {
	if e.Prefix == logPrefixOutput {
		return "", true
	}
	if rest, ok := strings.CutPrefix(e.Prefix, logPrefixSegment); ok {
		seg := strings.TrimSuffix(rest, " ")
		return seg, seg != "" && !strings.Contains(seg, " ")
	}
	return "", false
}

var errShort = errors.New("nflog: message too short")

// parseNFLOG reads an NFULNL_MSG_PACKET payload: the nfgenmsg header, then
// attributes. It never panics on malformed input (see FuzzParseNFLOG).
func parseNFLOG(b []byte) (logEntry, error) {
	if len(b) < 4 {
		return logEntry{}, errShort
	}
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		return logEntry{}, fmt.Errorf("nflog: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	var e logEntry
	var payload []byte
	for ad.Next() {
		switch ad.Type() {
		case nfulaPrefix:
			e.Prefix = strings.TrimRight(string(ad.Bytes()), "\x00")
		case nfulaIfIndexIn:
			if d := ad.Bytes(); len(d) == 4 {
				e.InIf = binary.BigEndian.Uint32(d)
			}
		case nfulaPayload:
			payload = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return logEntry{}, fmt.Errorf("nflog: %w", err)
	}
	if err := e.parsePacket(payload); err != nil {
		return logEntry{}, err
	}
	return e, nil
}

// parsePacket reads addresses, protocol and ports from an IPv4 or IPv6 packet (no
// extension headers followed; ports only from a first fragment).
func (e *logEntry) parsePacket(p []byte) error {
	if len(p) < 1 {
		return errors.New("nflog: no packet")
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0x0f) * 4
		if len(p) < 20 || ihl < 20 || len(p) < ihl {
			return errors.New("nflog: short IPv4 header")
		}
		e.Proto = p[9]
		e.Src = netip.AddrFrom4([4]byte(p[12:16]))
		e.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		if binary.BigEndian.Uint16(p[6:8])&0x1fff == 0 {
			l4 = p[ihl:]
		}
	case 6:
		if len(p) < 40 {
			return errors.New("nflog: short IPv6 header")
		}
		e.Proto = p[6]
		e.Src = netip.AddrFrom16([16]byte(p[8:24]))
		e.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		l4 = p[40:]
	default:
		return fmt.Errorf("nflog: IP version %d", p[0]>>4)
	}
	if (e.Proto == unix.IPPROTO_TCP || e.Proto == unix.IPPROTO_UDP) && len(l4) >= 4 {
		e.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		e.DstPort = binary.BigEndian.Uint16(l4[2:4])
	}
	return nil
}

// protoName names the transport protocols a log line shows.
func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}
