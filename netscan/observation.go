package netscan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Source names the decoder or probe that produced an observation.
type Source string

// Passive sources: facts decoded from frames the appliance overheard.
const (
	SourceARP     Source = "arp"
	SourceDHCP    Source = "dhcp"
	SourceMDNS    Source = "mdns"
	SourceSSDP    Source = "ssdp"
	SourceLLDP    Source = "lldp"
	SourceNetBIOS Source = "netbios"
	SourceNDP     Source = "ndp" // IPv6 neighbour solicitations and advertisements
)

// Active sources: facts learnt from a probe the appliance sent.
const (
	SourceARPSweep Source = "arp-sweep"
	SourceTCP      Source = "tcp"
	SourceSNMP     Source = "snmp"
	SourceMDNSQ    Source = "mdns-query"
	SourceSSDPQ    Source = "ssdp-search"
	SourceUPnP     Source = "upnp"
	SourceHTTP     Source = "http"
	SourceIPP      Source = "ipp"
)

// Passive reports whether s is a passive source.
func (s Source) Passive() bool {
	switch s {
	case SourceARP, SourceDHCP, SourceMDNS, SourceSSDP, SourceLLDP, SourceNetBIOS, SourceNDP:
		return true
	}
	return false
}

// Key names one kind of fact. Keys are stable strings: they appear in the
// fingerprint rules file and in the inventory's stored evidence.
type Key string

// Fact keys filled in by the decoders and probes.
const (
	KeyHostname Key = "hostname" // a name the device gave itself (DHCP 12, mDNS host, NetBIOS, sysName, LLDP)

	KeyDHCPVendorClass Key = "dhcp.vendor_class" // option 60
	KeyDHCPParams      Key = "dhcp.params"       // option 55 as "1,3,6,15": an OS fingerprint
	KeyDHCPClientID    Key = "dhcp.client_id"    // option 61, hex

	KeyMDNSService Key = "mdns.service"     // a DNS-SD service type, e.g. "_ipp._tcp"
	KeyMDNSTy      Key = "mdns.txt.ty"      // TXT ty= (printer make and model)
	KeyMDNSProduct Key = "mdns.txt.product" // TXT product=
	KeyMDNSUSBMfg  Key = "mdns.txt.usb_mfg" // TXT usb_MFG=
	KeyMDNSUSBMdl  Key = "mdns.txt.usb_mdl" // TXT usb_MDL=
	KeyMDNSHost    Key = "mdns.host"        // the .local host name of an A/AAAA/SRV record

	KeySSDPServer   Key = "ssdp.server"   // SERVER header
	KeySSDPLocation Key = "ssdp.location" // LOCATION header
	KeySSDPType     Key = "ssdp.type"     // NT or ST header

	KeyUPnPUDN          Key = "upnp.udn"
	KeyUPnPDeviceType   Key = "upnp.device_type"
	KeyUPnPFriendlyName Key = "upnp.friendly_name"
	KeyUPnPManufacturer Key = "upnp.manufacturer"
	KeyUPnPModelName    Key = "upnp.model_name"
	KeyUPnPModelNumber  Key = "upnp.model_number"
	KeyUPnPSerial       Key = "upnp.serial"

	KeyLLDPChassisID Key = "lldp.chassis_id"
	KeyLLDPSysName   Key = "lldp.sys_name"
	KeyLLDPSysDescr  Key = "lldp.sys_descr"
	KeyLLDPCaps      Key = "lldp.capabilities" // enabled capabilities, e.g. "bridge,router"

	KeyNetBIOSName  Key = "netbios.name"  // a unique name (workstation or server)
	KeyNetBIOSGroup Key = "netbios.group" // a group name (workgroup or domain)

	KeyTCPOpen Key = "tcp.open" // an open TCP port, decimal

	KeySNMPSysDescr    Key = "snmp.sys_descr"
	KeySNMPSysObjectID Key = "snmp.sys_object_id"
	KeySNMPSysName     Key = "snmp.sys_name"
	KeySNMPEngineID    Key = "snmp.engine_id" // hex
	KeySNMPSerial      Key = "snmp.serial"    // Printer-MIB prtGeneralSerialNumber
	KeySNMPModel       Key = "snmp.model"     // Host-Resources hrDeviceDescr

	KeyHTTPServer Key = "http.server"
	KeyHTTPTitle  Key = "http.title"

	KeyIPPMakeModel Key = "ipp.make_and_model"
	KeyIPPFirmware  Key = "ipp.firmware"
	KeyIPPDeviceID  Key = "ipp.device_id" // IEEE 1284 device ID
	KeyIPPSerial    Key = "ipp.serial"

	KeyMACVendor Key = "mac.vendor" // set by fingerprint from the IEEE registry
	KeyMACRandom Key = "mac.random" // "true" when the MAC is locally administered
)

// Fact is one piece of evidence about a device.
type Fact struct {
	Key   Key
	Value string
}

func (f Fact) String() string { return string(f.Key) + "=" + f.Value }

// Observation is what one frame or one probe taught about one device: who
// (MAC, address) and what (facts), when, and from which source.
//
// MAC is zero when the source does not show it (a routed probe); Addr is
// invalid when the source shows no address (LLDP). An observation is a
// value: its Facts slice belongs to it.
type Observation struct {
	Time      time.Time
	Source    Source
	Interface string
	MAC       MAC
	Addr      netip.Addr
	Facts     []Fact
}

// Add appends a fact, dropping empty values and exact repeats. Values are
// cleaned of control characters and cut to MaxFactLen bytes.
func (o *Observation) Add(k Key, v string) {
	v = CleanValue(v)
	if v == "" {
		return
	}
	for _, f := range o.Facts {
		if f.Key == k && f.Value == v {
			return
		}
	}
	o.Facts = append(o.Facts, Fact{Key: k, Value: v})
}

// Get returns the first value of key k, or "".
func (o Observation) Get(k Key) string {
	for _, f := range o.Facts {
		if f.Key == k {
			return f.Value
		}
	}
	return ""
}

// All returns every value of key k in order.
func (o Observation) All(k Key) []string {
	var vs []string
	for _, f := range o.Facts {
		if f.Key == k {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

func (o Observation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", o.Source)
	if !o.MAC.IsZero() {
		fmt.Fprintf(&b, " mac=%s", o.MAC)
	}
	if o.Addr.IsValid() {
		fmt.Fprintf(&b, " addr=%s", o.Addr)
	}
	for _, f := range o.Facts {
		fmt.Fprintf(&b, " %s=%q", f.Key, f.Value)
	}
	return b.String()
}

// SortFacts orders facts by key then value, so observations compare equal
// whatever order a decoder met the facts in.
func SortFacts(fs []Fact) {
	slices.SortFunc(fs, func(a, b Fact) int {
		if c := strings.Compare(string(a.Key), string(b.Key)); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// MaxFactLen is the longest fact value kept, in bytes; longer ones are cut.
const MaxFactLen = 256

// CleanValue trims v, replaces control characters and invalid UTF-8 with
// spaces or U+FFFD, and cuts it to MaxFactLen bytes on a rune boundary.
// Facts come from the network: nothing unprintable reaches a log or a page.
func CleanValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if !clean {
		v = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return ' '
			}
			return r
		}, strings.ToValidUTF8(v, "\uFFFD"))
	}
	v = strings.TrimSpace(v)
	if len(v) > MaxFactLen {
		cut := MaxFactLen
		for cut > 0 && v[cut]&0xc0 == 0x80 {
			cut--
		}
		v = strings.TrimSpace(v[:cut])
	}
	return v
}
