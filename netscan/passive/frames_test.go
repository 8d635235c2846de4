package passive

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"
)

// This file builds the frames of the golden tests. They are written to
// testdata/frames/*.pcap by `go test -run TestGolden -update` and read back
// from there otherwise, so the committed captures are what is tested. All
// addresses are from the documentation ranges (192.0.2.0/24, 2001:db8::/32)
// or link-local; nothing here is ever sent.

var (
	macZebra   = net.HardwareAddr{0x00, 0x07, 0x4d, 0x10, 0x20, 0x30} // Zebra Technologies OUI
	macHand    = net.HardwareAddr{0x00, 0xa0, 0xf8, 0x44, 0x55, 0x66} // Symbol (Zebra) handheld OUI
	macRandom  = net.HardwareAddr{0x7a, 0x11, 0x22, 0x33, 0x44, 0x55} // locally administered
	macSwitch  = net.HardwareAddr{0x00, 0x1b, 0x54, 0x01, 0x02, 0x03}
	macServer  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	macBcast   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macMDNS4   = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
	macMDNS6   = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0xfb}
	macSSDP    = net.HardwareAddr{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa}
	macLLDP    = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}
	ipPrinter  = net.IP{192, 0, 2, 10}
	ipHand     = net.IP{192, 0, 2, 20}
	ipWS       = net.IP{192, 0, 2, 30}
	ipServer   = net.IP{192, 0, 2, 1}
	ipMDNS4    = net.IP{224, 0, 0, 251}
	ipSSDP     = net.IP{239, 255, 255, 250}
	ipBcast    = net.IP{255, 255, 255, 255}
	ipZero     = net.IP{0, 0, 0, 0}
	ip6Printer = net.ParseIP("fe80::207:4dff:fe10:2030")
	ip6MDNS    = net.ParseIP("ff02::fb")
)

type frameCase struct {
	name string
	// build returns the frame's bytes.
	build func(t *testing.T) []byte
	// accept is whether the capture filter must let the frame through.
	accept bool
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		l4, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		})
		if !ok {
			continue
		}
		for _, n := range ls {
			if nl, ok := n.(gopacket.NetworkLayer); ok {
				if err := l4.SetNetworkLayerForChecksum(nl); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func udp4(t *testing.T, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	return serialize(t,
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 255, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst},
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)},
		gopacket.Payload(payload))
}

func arpFrame(t *testing.T, op uint16, mac net.HardwareAddr, src, dst net.IP) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: mac, DstMAC: macBcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: mac, SourceProtAddress: src, DstHwAddress: make([]byte, 6), DstProtAddress: dst})
}

func dhcpFrame(t *testing.T, op layers.DHCPOp, msg layers.DHCPMsgType, mac net.HardwareAddr, yiaddr net.IP, opts ...layers.DHCPOption) []byte {
	t.Helper()
	d := &layers.DHCPv4{Operation: op, HardwareType: layers.LinkTypeEthernet, HardwareLen: 6, Xid: 0x1234,
		ClientHWAddr: mac, ClientIP: ipZero, YourClientIP: yiaddr, NextServerIP: ipZero, RelayAgentIP: ipZero}
	d.Options = append(d.Options, layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(msg)}))
	d.Options = append(d.Options, opts...)
	if op == layers.DHCPOpRequest {
		return serialize(t,
			&layers.Ethernet{SrcMAC: mac, DstMAC: macBcast, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipZero, DstIP: ipBcast},
			&layers.UDP{SrcPort: 68, DstPort: 67}, d)
	}
	return serialize(t,
		&layers.Ethernet{SrcMAC: macServer, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipServer, DstIP: yiaddr},
		&layers.UDP{SrcPort: 67, DstPort: 68}, d)
}

func packDNS(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack dns: %v", err)
	}
	return b
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("rr %q: %v", s, err)
	}
	return r
}

func printerMDNS(t *testing.T) []byte {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	m.Answer = []dns.RR{rr(t, `_ipp._tcp.local. 4500 IN PTR Label\ Printer._ipp._tcp.local.`)}
	m.Extra = []dns.RR{
		rr(t, `Label\ Printer._ipp._tcp.local. 4500 IN SRV 0 0 631 zt410-lab.local.`),
		rr(t, `Label\ Printer._ipp._tcp.local. 4500 IN TXT "txtvers=1" "ty=Zebra ZT410-300dpi ZPL" "product=(ZT410)" "usb_MFG=Zebra Technologies" "usb_MDL=ZTC ZT410-300dpi ZPL" "rp=ipp/print"`),
		rr(t, `zt410-lab.local. 120 IN A 192.0.2.10`),
	}
	return packDNS(t, m)
}

func servicesMDNS(t *testing.T) []byte {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	m.Answer = []dns.RR{
		rr(t, `_services._dns-sd._udp.local. 4500 IN PTR _ipp._tcp.local.`),
		rr(t, `_services._dns-sd._udp.local. 4500 IN PTR _pdl-datastream._tcp.local.`),
		rr(t, `_services._dns-sd._udp.local. 4500 IN PTR _http._tcp.local.`),
	}
	return packDNS(t, m)
}

func queryMDNS(t *testing.T) []byte {
	m := new(dns.Msg)
	m.SetQuestion("_services._dns-sd._udp.local.", dns.TypePTR)
	m.Id = 0
	m.RecursionDesired = false
	return packDNS(t, m)
}

const ssdpNotifyMsg = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n" +
	"LOCATION: http://192.0.2.10:80/upnp/desc.xml\r\nNT: urn:schemas-upnp-org:device:Printer:1\r\nNTS: ssdp:alive\r\n" +
	"SERVER: Linux/4.9 UPnP/1.0 Zebra-Link-OS/6.3\r\nUSN: uuid:4a2b0c1d-0000-1000-8000-00074d102030::urn:schemas-upnp-org:device:Printer:1\r\n\r\n"

const ssdpSearchMsg = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"

func lldpFrame(t *testing.T, mangle bool) []byte {
	t.Helper()
	var b []byte
	tlv := func(typ int, v []byte) {
		b = binary.BigEndian.AppendUint16(b, uint16(typ<<9|len(v)))
		b = append(b, v...)
	}
	tlv(1, append([]byte{4}, macSwitch...))
	tlv(2, append([]byte{5}, "Gi1/0/7"...))
	tlv(3, []byte{0, 120})
	tlv(5, []byte("sw-pharmacy-1"))
	tlv(6, []byte("Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8"))
	tlv(7, []byte{0x00, 0x14, 0x00, 0x14})
	tlv(8, []byte{5, 1, 192, 0, 2, 2, 2, 0, 0, 0, 1, 0})
	tlv(0, nil)
	if mangle {
		b[len(b)-20] = 0xff // a length past the end
		b = b[:len(b)-10]
	}
	return serialize(t, &layers.Ethernet{SrcMAC: macSwitch, DstMAC: macLLDP, EthernetType: layers.EthernetTypeLinkLayerDiscovery}, gopacket.Payload(b))
}

// nbEncode first-level encodes a NetBIOS name with its suffix byte.
func nbEncode(name string, suffix byte) []byte {
	var raw [16]byte
	copy(raw[:], strings.ToUpper(name)+strings.Repeat(" ", 15))
	raw[15] = suffix
	out := []byte{32}
	for _, c := range raw {
		out = append(out, 'A'+c>>4, 'A'+c&0xf)
	}
	return append(out, 0)
}

func nbnsRegistration(name string, suffix byte, group bool, ip net.IP) []byte {
	b := []byte{0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1} // registration, RD, B
	b = append(b, nbEncode(name, suffix)...)
	b = append(b, 0, 0x20, 0, 1) // NB IN
	b = append(b, 0xc0, 0x0c)    // pointer to the question name
	b = append(b, 0, 0x20, 0, 1, 0, 0x04, 0x93, 0xe0, 0, 6)
	flags := uint16(0)
	if group {
		flags = 0x8000
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	return append(b, ip.To4()...)
}

func nbnsAnswer(name string, ip net.IP) []byte {
	b := []byte{0x12, 0x35, 0x85, 0x00, 0, 0, 0, 1, 0, 0, 0, 0}
	b = append(b, nbEncode(name, 0x20)...)
	b = append(b, 0, 0x20, 0, 1, 0, 0x04, 0x93, 0xe0, 0, 6, 0, 0)
	return append(b, ip.To4()...)
}

func frameCases() []frameCase {
	return []frameCase{
		{name: "arp_request", accept: true, build: func(t *testing.T) []byte {
			return arpFrame(t, layers.ARPRequest, macZebra, ipPrinter, ipServer)
		}},
		{name: "arp_probe", accept: true, build: func(t *testing.T) []byte {
			return arpFrame(t, layers.ARPRequest, macRandom, ipZero, ipWS)
		}},
		{name: "arp_vlan", accept: false, build: func(t *testing.T) []byte {
			// A tagged frame: the kernel normally strips the tag, so the
			// filter need not match it, but the decoder reads it.
			return serialize(t,
				&layers.Ethernet{SrcMAC: macHand, DstMAC: macBcast, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeARP},
				&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
					Operation: layers.ARPReply, SourceHwAddress: macHand, SourceProtAddress: ipHand, DstHwAddress: macServer, DstProtAddress: ipServer})
		}},
		{name: "arp_truncated", accept: true, build: func(t *testing.T) []byte {
			return arpFrame(t, layers.ARPRequest, macZebra, ipPrinter, ipServer)[:14+12]
		}},
		{name: "arp_bad_sizes", accept: true, build: func(t *testing.T) []byte {
			b := arpFrame(t, layers.ARPRequest, macZebra, ipPrinter, ipServer)
			b[14+4] = 8 // hardware size 8 is no Ethernet
			return b
		}},
		{name: "dhcp_discover_handheld", accept: true, build: func(t *testing.T) []byte {
			return dhcpFrame(t, layers.DHCPOpRequest, layers.DHCPMsgTypeDiscover, macHand, ipZero,
				layers.NewDHCPOption(layers.DHCPOptClientID, append([]byte{1}, macHand...)),
				layers.NewDHCPOption(layers.DHCPOptHostname, []byte("TC52-PHARM-01")),
				layers.NewDHCPOption(layers.DHCPOptClassID, []byte("android-dhcp-11")),
				layers.NewDHCPOption(layers.DHCPOptParamsRequest, []byte{1, 3, 6, 15, 26, 28, 51, 58, 59, 43}))
		}},
		{name: "dhcp_ack", accept: true, build: func(t *testing.T) []byte {
			return dhcpFrame(t, layers.DHCPOpReply, layers.DHCPMsgTypeAck, macHand, ipHand,
				layers.NewDHCPOption(layers.DHCPOptHostname, []byte("server-name-not-the-client")))
		}},
		{name: "dhcp_offer_ignored", accept: true, build: func(t *testing.T) []byte {
			return dhcpFrame(t, layers.DHCPOpReply, layers.DHCPMsgTypeOffer, macHand, ipHand)
		}},
		{name: "dhcp_bad_cookie", accept: true, build: func(t *testing.T) []byte {
			b := dhcpFrame(t, layers.DHCPOpRequest, layers.DHCPMsgTypeDiscover, macHand, ipZero)
			b[14+20+8+236] = 0 // first byte of the magic cookie
			return b
		}},
		{name: "mdns_printer", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macZebra, macMDNS4, ipPrinter, ipMDNS4, 5353, 5353, printerMDNS(t))
		}},
		{name: "mdns_printer_ipv6", accept: true, build: func(t *testing.T) []byte {
			return serialize(t,
				&layers.Ethernet{SrcMAC: macZebra, DstMAC: macMDNS6, EthernetType: layers.EthernetTypeIPv6},
				&layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolUDP, SrcIP: ip6Printer, DstIP: ip6MDNS},
				&layers.UDP{SrcPort: 5353, DstPort: 5353}, gopacket.Payload(printerMDNS(t)))
		}},
		{name: "mdns_services", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macZebra, macMDNS4, ipPrinter, ipMDNS4, 5353, 5353, servicesMDNS(t))
		}},
		{name: "mdns_query_ignored", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macRandom, macMDNS4, ipWS, ipMDNS4, 5353, 5353, queryMDNS(t))
		}},
		{name: "mdns_truncated", accept: true, build: func(t *testing.T) []byte {
			p := printerMDNS(t)
			return udp4(t, macZebra, macMDNS4, ipPrinter, ipMDNS4, 5353, 5353, p[:len(p)-30])
		}},
		{name: "ssdp_notify", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macZebra, macSSDP, ipPrinter, ipSSDP, 1900, 1900, []byte(ssdpNotifyMsg))
		}},
		{name: "ssdp_search_ignored", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macRandom, macSSDP, ipWS, ipSSDP, 50000, 1900, []byte(ssdpSearchMsg))
		}},
		{name: "ssdp_garbage", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macRandom, macSSDP, ipWS, ipSSDP, 50000, 1900, []byte("\x00\x01binary junk"))
		}},
		{name: "lldp_switch", accept: true, build: func(t *testing.T) []byte { return lldpFrame(t, false) }},
		{name: "lldp_bad_length", accept: true, build: func(t *testing.T) []byte { return lldpFrame(t, true) }},
		{name: "nbns_register_workstation", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macServer, macBcast, ipWS, net.IP{192, 0, 2, 255}, 137, 137, nbnsRegistration("RX-WS-01", 0x00, false, ipWS))
		}},
		{name: "nbns_register_group", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macServer, macBcast, ipWS, net.IP{192, 0, 2, 255}, 137, 137, nbnsRegistration("PHARMACY", 0x00, true, ipWS))
		}},
		{name: "nbns_answer", accept: true, build: func(t *testing.T) []byte {
			return udp4(t, macServer, macHand, ipWS, ipHand, 137, 137, nbnsAnswer("RX-SRV", ipWS))
		}},
		{name: "nbns_bad_encoding", accept: true, build: func(t *testing.T) []byte {
			p := nbnsRegistration("RX-WS-01", 0x00, false, ipWS)
			p[14] = 'z'
			return udp4(t, macServer, macBcast, ipWS, net.IP{192, 0, 2, 255}, 137, 137, p)
		}},
		{name: "tcp_ignored", accept: false, build: func(t *testing.T) []byte {
			return serialize(t,
				&layers.Ethernet{SrcMAC: macServer, DstMAC: macZebra, EthernetType: layers.EthernetTypeIPv4},
				&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ipServer, DstIP: ipPrinter},
				&layers.TCP{SrcPort: 40000, DstPort: 9100, SYN: true, Window: 1024})
		}},
		{name: "dns_ignored", accept: false, build: func(t *testing.T) []byte {
			return udp4(t, macServer, macZebra, ipServer, ipPrinter, 53, 40000, queryMDNS(t))
		}},
	}
}

var _ = netip.Addr{}
