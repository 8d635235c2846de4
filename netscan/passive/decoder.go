package passive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/patchgate/patchgate/netscan"
)

// UDP ports of the protocols the Decoder understands.
const (
	portDHCPServer = 67
	portDHCPClient = 68
	portNetBIOSNS  = 137
	portSSDP       = 1900
	portMDNS       = 5353
)

// ErrMalformed wraps every decoding error: the frame claimed to be one of
// the protocols the Decoder reads but did not parse.
var ErrMalformed = errors.New("malformed frame")

// Decoder decodes Ethernet frames into observations. Its layers are reused
// from frame to frame, so a Decoder is not safe for concurrent use: give
// each capture goroutine its own.
type Decoder struct {
	iface   string
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	arp     layers.ARP
	ip4     layers.IPv4
	ip6     layers.IPv6
	udp     layers.UDP
	dhcp    layers.DHCPv4
	dns     layers.DNS
	parser  *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	self    netscan.MAC
}

// IgnoreSource makes the Decoder skip frames sent from mac (the capturing
// interface's own address: the appliance is not an asset of the segment).
func (d *Decoder) IgnoreSource(mac netscan.MAC) { d.self = mac }

// NewDecoder returns a Decoder whose observations name iface as their
// interface.
func NewDecoder(iface string) *Decoder {
	d := &Decoder{iface: iface, decoded: make([]gopacket.LayerType, 0, 8)}
	d.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
		&d.eth, &d.dot1q, &d.arp, &d.ip4, &d.ip6, &d.udp)
	d.parser.IgnoreUnsupported = true
	return d
}

// Decode decodes one frame captured at t and calls emit once per
// observation in it. It returns how many observations it emitted, and an
// error wrapping ErrMalformed when the frame did not parse (some
// observations may have been emitted before the error was found). A frame
// of no interest gives 0, nil. emit must not keep references into the
// frame; observations hold copies.
func (d *Decoder) Decode(frame []byte, t time.Time, emit func(netscan.Observation)) (n int, err error) {
	if err := d.parser.DecodeLayers(frame, &d.decoded); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !d.self.IsZero() && netscan.MACFrom(d.eth.SrcMAC) == d.self {
		return 0, nil
	}
	var (
		haveIP bool
		src    netip.Addr
	)
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeARP:
			return d.decodeARP(t, emit)
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP.To4())
			haveIP = true
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			haveIP = true
			if d.ip6.NextHeader == layers.IPProtocolICMPv6 {
				return d.decodeNDP(t, src, emit) // ndp.go
			}
		case layers.LayerTypeUDP:
			if !haveIP {
				return 0, nil
			}
			return d.decodeUDP(t, src, emit)
		}
	}
	if len(d.decoded) > 0 && d.decoded[len(d.decoded)-1] != layers.LayerTypeUDP {
		et := d.eth.EthernetType
		if len(d.decoded) > 1 && d.decoded[1] == layers.LayerTypeDot1Q {
			et = d.dot1q.Type
		}
		if et == layers.EthernetTypeLinkLayerDiscovery {
			return d.decodeLLDP(t, emit)
		}
	}
	return 0, nil
}

func (d *Decoder) newObs(t time.Time, src netscan.Source) netscan.Observation {
	return netscan.Observation{Time: t, Source: src, Interface: d.iface, MAC: netscan.MACFrom(d.eth.SrcMAC)}
}

func (d *Decoder) decodeARP(t time.Time, emit func(netscan.Observation)) (int, error) {
	a := &d.arp
	if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 ||
		a.HwAddressSize != 6 || a.ProtAddressSize != 4 {
		return 0, fmt.Errorf("%w: arp: hardware %d/%d protocol %#04x/%d", ErrMalformed,
			a.AddrType, a.HwAddressSize, uint16(a.Protocol), a.ProtAddressSize)
	}
	o := d.newObs(t, netscan.SourceARP)
	o.MAC = netscan.MACFrom(a.SourceHwAddress)
	if !o.MAC.Unicast() {
		return 0, fmt.Errorf("%w: arp: sender hardware address %s", ErrMalformed, o.MAC)
	}
	if ip := netip.AddrFrom4([4]byte(a.SourceProtAddress)); !ip.IsUnspecified() {
		o.Addr = ip // an ARP probe (RFC 5227) has sender 0.0.0.0: MAC only
	}
	emit(o)
	return 1, nil
}

func (d *Decoder) decodeUDP(t time.Time, src netip.Addr, emit func(netscan.Observation)) (int, error) {
	sp, dp := uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	payload := d.udp.Payload
	switch {
	case (sp == portDHCPClient && dp == portDHCPServer) || (sp == portDHCPServer && dp == portDHCPClient):
		return d.decodeDHCP(t, payload, emit)
	case sp == portMDNS || dp == portMDNS:
		return d.decodeMDNS(t, src, payload, emit)
	case sp == portSSDP || dp == portSSDP:
		o := d.newObs(t, netscan.SourceSSDP)
		o.Addr = src
		ok, err := ParseSSDP(payload, &o)
		if err != nil || !ok {
			return 0, err
		}
		emit(o)
		return 1, nil
	case sp == portNetBIOSNS && dp == portNetBIOSNS:
		o := d.newObs(t, netscan.SourceNetBIOS)
		o.Addr = src
		ok, err := ParseNBNS(payload, &o)
		if err != nil || !ok {
			return 0, err
		}
		emit(o)
		return 1, nil
	}
	return 0, nil
}

func (d *Decoder) decodeDHCP(t time.Time, payload []byte, emit func(netscan.Observation)) (int, error) {
	if err := d.dhcp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
		return 0, fmt.Errorf("%w: dhcp: %v", ErrMalformed, err)
	}
	m := &d.dhcp
	if m.HardwareType != layers.LinkTypeEthernet || m.HardwareLen != 6 {
		return 0, nil // not an Ethernet client: nothing to key it on
	}
	o := d.newObs(t, netscan.SourceDHCP)
	o.MAC = netscan.MACFrom(m.ClientHWAddr)
	if !o.MAC.Unicast() {
		return 0, fmt.Errorf("%w: dhcp: client hardware address %s", ErrMalformed, o.MAC)
	}
	var msgType layers.DHCPMsgType
	for _, opt := range m.Options {
		if opt.Type == layers.DHCPOptMessageType && len(opt.Data) == 1 {
			msgType = layers.DHCPMsgType(opt.Data[0])
		}
	}
	if m.Operation == layers.DHCPOpReply {
		// A server's ACK tells which address the client now holds; the
		// server's own options describe the server, not the client.
		if msgType != layers.DHCPMsgTypeAck {
			return 0, nil
		}
		ip, ok := netip.AddrFromSlice(m.YourClientIP.To4())
		if !ok || ip.IsUnspecified() {
			return 0, nil
		}
		o.Addr = ip
		emit(o)
		return 1, nil
	}
	if ip, ok := netip.AddrFromSlice(m.ClientIP.To4()); ok && !ip.IsUnspecified() {
		o.Addr = ip
	}
	for _, opt := range m.Options {
		switch opt.Type {
		case layers.DHCPOptHostname:
			o.Add(netscan.KeyHostname, string(opt.Data))
		case layers.DHCPOptClassID:
			o.Add(netscan.KeyDHCPVendorClass, string(opt.Data))
		case layers.DHCPOptParamsRequest:
			o.Add(netscan.KeyDHCPParams, joinBytes(opt.Data))
		case layers.DHCPOptClientID:
			o.Add(netscan.KeyDHCPClientID, fmt.Sprintf("%x", opt.Data))
		}
	}
	emit(o)
	return 1, nil
}

// joinBytes renders b as decimal numbers joined by commas.
func joinBytes(b []byte) string {
	out := make([]byte, 0, len(b)*4)
	for i, c := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = fmt.Appendf(out, "%d", c)
	}
	return string(out)
}

func (d *Decoder) decodeLLDP(t time.Time, emit func(netscan.Observation)) (int, error) {
	payload := d.eth.Payload
	if len(d.decoded) > 1 && d.decoded[1] == layers.LayerTypeDot1Q {
		payload = d.dot1q.Payload
	}
	o := d.newObs(t, netscan.SourceLLDP)
	if err := ParseLLDP(payload, &o); err != nil {
		return 0, err
	}
	emit(o)
	return 1, nil
}

// ParseLLDP reads the TLVs of an LLDPDU (the Ethernet payload) into o:
// chassis ID, system name and description, enabled capabilities and the
// first IPv4 or IPv6 management address.
func ParseLLDP(b []byte, o *netscan.Observation) error {
	seen := 0
	for len(b) > 0 {
		if len(b) < 2 {
			return fmt.Errorf("%w: lldp: truncated tlv header", ErrMalformed)
		}
		h := binary.BigEndian.Uint16(b)
		typ, n := h>>9, int(h&0x1ff)
		if len(b) < 2+n {
			return fmt.Errorf("%w: lldp: tlv type %d length %d past end", ErrMalformed, typ, n)
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		seen++
		switch typ {
		case 0: // end of LLDPDU
			if seen < 4 {
				return fmt.Errorf("%w: lldp: end after %d tlvs", ErrMalformed, seen-1)
			}
			return nil
		case 1: // chassis ID
			if n < 2 {
				return fmt.Errorf("%w: lldp: chassis id too short", ErrMalformed)
			}
			switch v[0] {
			case 4: // MAC address
				if n == 7 {
					o.Add(netscan.KeyLLDPChassisID, netscan.MACFrom(v[1:]).String())
				}
			case 7, 2, 1, 6: // local, interface alias, chassis component, interface name
				o.Add(netscan.KeyLLDPChassisID, string(v[1:]))
			}
		case 5:
			o.Add(netscan.KeyLLDPSysName, string(v))
			o.Add(netscan.KeyHostname, string(v))
		case 6:
			o.Add(netscan.KeyLLDPSysDescr, string(v))
		case 7: // system capabilities: 2 bytes supported, 2 bytes enabled
			if n != 4 {
				return fmt.Errorf("%w: lldp: capabilities length %d", ErrMalformed, n)
			}
			o.Add(netscan.KeyLLDPCaps, lldpCaps(binary.BigEndian.Uint16(v[2:])))
		case 8: // management address: len, subtype, address...
			if n < 2 || int(v[0]) < 1 || int(v[0])+1 > n {
				return fmt.Errorf("%w: lldp: management address", ErrMalformed)
			}
			if !o.Addr.IsValid() {
				if a, ok := netip.AddrFromSlice(v[2 : 1+int(v[0])]); ok && (v[1] == 1 || v[1] == 2) {
					o.Addr = a.Unmap()
				}
			}
		}
	}
	return fmt.Errorf("%w: lldp: no end tlv", ErrMalformed)
}

var lldpCapNames = [...]string{"other", "repeater", "bridge", "wlan-ap", "router", "telephone", "docsis", "station", "cvlan", "svlan", "tpmr"}

func lldpCaps(c uint16) string {
	var out []byte
	for i, name := range lldpCapNames {
		if c&(1<<i) != 0 {
			if len(out) > 0 {
				out = append(out, ',')
			}
			out = append(out, name...)
		}
	}
	return string(out)
}
