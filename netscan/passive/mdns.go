package passive

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/patchgate/patchgate/netscan"
)

func (d *Decoder) decodeMDNS(t time.Time, src netip.Addr, payload []byte, emit func(netscan.Observation)) (int, error) {
	o := d.newObs(t, netscan.SourceMDNS)
	o.Addr = src
	ok, err := parseMDNS(&d.dns, payload, &o)
	if err != nil || !ok {
		return 0, err
	}
	emit(o)
	return 1, nil
}

// ParseMDNS reads an mDNS response (a UDP payload) into o: service types,
// host names and the TXT keys ty, product, usb_MFG and usb_MDL. It reports
// whether the message was a response with anything to tell; queries give
// false, nil.
func ParseMDNS(payload []byte, o *netscan.Observation) (bool, error) {
	var dns layers.DNS
	return parseMDNS(&dns, payload, o)
}

var (
	servicesName = []byte("_services._dns-sd._udp.local")
	localSuffix  = []byte(".local")
)

func parseMDNS(dns *layers.DNS, payload []byte, o *netscan.Observation) (bool, error) {
	if err := dns.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
		return false, fmt.Errorf("%w: mdns: %v", ErrMalformed, err)
	}
	if !dns.QR || dns.OpCode != layers.DNSOpCodeQuery {
		return false, nil
	}
	before := len(o.Facts)
	for _, set := range [...][]layers.DNSResourceRecord{dns.Answers, dns.Additionals} {
		for i := range set {
			mdnsRecord(&set[i], o)
		}
	}
	return len(o.Facts) > before, nil
}

func mdnsRecord(rr *layers.DNSResourceRecord, o *netscan.Observation) {
	switch rr.Type {
	case layers.DNSTypePTR:
		if bytes.EqualFold(rr.Name, servicesName) {
			if st, ok := serviceType(rr.PTR); ok {
				o.Add(netscan.KeyMDNSService, st)
			}
			return
		}
		if st, ok := serviceType(rr.Name); ok {
			o.Add(netscan.KeyMDNSService, st)
		}
	case layers.DNSTypeSRV:
		if st, ok := instanceServiceType(rr.Name); ok {
			o.Add(netscan.KeyMDNSService, st)
		}
		addHost(rr.SRV.Name, o)
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		addHost(rr.Name, o)
	case layers.DNSTypeTXT:
		if st, ok := instanceServiceType(rr.Name); ok {
			o.Add(netscan.KeyMDNSService, st)
		}
		for _, txt := range rr.TXTs {
			k, v, ok := bytes.Cut(txt, []byte("="))
			if !ok {
				continue
			}
			switch strings.ToLower(string(k)) {
			case "ty":
				o.Add(netscan.KeyMDNSTy, string(v))
			case "product":
				o.Add(netscan.KeyMDNSProduct, strings.Trim(string(v), "()"))
			case "usb_mfg":
				o.Add(netscan.KeyMDNSUSBMfg, string(v))
			case "usb_mdl":
				o.Add(netscan.KeyMDNSUSBMdl, string(v))
			}
		}
	}
}

// serviceType turns "_ipp._tcp.local" into "_ipp._tcp".
func serviceType(name []byte) (string, bool) {
	name = bytes.TrimSuffix(name, []byte("."))
	if !hasSuffixFold(name, localSuffix) {
		return "", false
	}
	name = name[:len(name)-len(localSuffix)]
	labels := bytes.Split(name, []byte("."))
	if len(labels) != 2 || len(labels[0]) < 2 || labels[0][0] != '_' {
		return "", false
	}
	proto := strings.ToLower(string(labels[1]))
	if proto != "_tcp" && proto != "_udp" {
		return "", false
	}
	return strings.ToLower(string(labels[0])) + "." + proto, true
}

// instanceServiceType turns "Label Printer._ipp._tcp.local" into "_ipp._tcp".
func instanceServiceType(name []byte) (string, bool) {
	name = bytes.TrimSuffix(name, []byte("."))
	// The instance label may itself hold dots; the type is the last three labels.
	dots := 0
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			dots++
			if dots == 3 {
				return serviceType(name[i+1:])
			}
		}
	}
	return "", false
}

func addHost(name []byte, o *netscan.Observation) {
	name = bytes.TrimSuffix(name, []byte("."))
	if !hasSuffixFold(name, localSuffix) || len(name) == len(localSuffix) {
		return
	}
	host := string(name[:len(name)-len(localSuffix)])
	if strings.Contains(host, "._") {
		return // a service name, not a host
	}
	o.Add(netscan.KeyMDNSHost, host+".local")
	o.Add(netscan.KeyHostname, host)
}

func hasSuffixFold(b, suffix []byte) bool {
	return len(b) >= len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], suffix)
}
