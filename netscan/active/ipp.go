package active

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/patchgate/patchgate/netscan"
)

// IPP value tags (RFC 8010 3.5.2).
const (
	ippTagOperation = 0x01
	ippTagEnd       = 0x03
	ippTagKeyword   = 0x44
	ippTagURI       = 0x45
	ippTagCharset   = 0x47
	ippTagLanguage  = 0x48
	ippOpGetPrinter = 0x000b
)

// ippRequested are the printer attributes the probe asks for.
var ippRequested = []string{
	"printer-make-and-model", "printer-firmware-string-version", "printer-firmware-name",
	"printer-device-id", "printer-info", "printer-uuid", "printer-serial-number",
}

// IPPRequest encodes a Get-Printer-Attributes request for printerURI.
func IPPRequest(printerURI string, requestID uint32) []byte {
	b := []byte{1, 1} // IPP/1.1
	b = binary.BigEndian.AppendUint16(b, ippOpGetPrinter)
	b = binary.BigEndian.AppendUint32(b, requestID)
	b = append(b, ippTagOperation)
	attr := func(tag byte, name, value string) {
		b = append(b, tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
		b = append(b, value...)
	}
	attr(ippTagCharset, "attributes-charset", "utf-8")
	attr(ippTagLanguage, "attributes-natural-language", "en")
	attr(ippTagURI, "printer-uri", printerURI)
	for i, r := range ippRequested {
		name := ""
		if i == 0 {
			name = "requested-attributes"
		}
		attr(ippTagKeyword, name, r)
	}
	return append(b, ippTagEnd)
}

// ParseIPPResponse decodes an IPP response into its status code and the
// first value of each attribute with a textual value (text, name, keyword,
// uri, and the like: tags 0x41-0x49), by attribute name.
func ParseIPPResponse(b []byte) (status uint16, attrs map[string]string, err error) {
	if len(b) < 9 {
		return 0, nil, fmt.Errorf("active: ipp: response of %d bytes", len(b))
	}
	if b[0] < 1 || b[0] > 2 {
		return 0, nil, fmt.Errorf("active: ipp: version %d.%d", b[0], b[1])
	}
	status = binary.BigEndian.Uint16(b[2:])
	attrs = map[string]string{}
	off := 8
	last := ""
	for off < len(b) {
		tag := b[off]
		off++
		if tag == ippTagEnd {
			return status, attrs, nil
		}
		if tag < 0x10 { // a group delimiter
			continue
		}
		if off+2 > len(b) {
			break
		}
		nl := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if off+nl+2 > len(b) {
			break
		}
		name := string(b[off : off+nl])
		off += nl
		vl := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if off+vl > len(b) {
			break
		}
		val := b[off : off+vl]
		off += vl
		if nl == 0 {
			name = last // an additional value of the previous attribute
		} else {
			last = name
		}
		if tag >= 0x41 && tag <= 0x49 && name != "" {
			if _, ok := attrs[name]; !ok && len(attrs) < 256 {
				attrs[name] = string(val)
			}
		}
	}
	return status, attrs, errors.New("active: ipp: truncated response")
}

// probeIPP asks an open port 631 for Get-Printer-Attributes.
func (sc *scan) probeIPP(ctx context.Context, h *host) {
	port := sc.cfg.IPPPort
	if !h.isOpen(port) {
		return
	}
	client := sc.httpClient(h, ProbeIPP)
	defer client.CloseIdleConnections()
	base := "http://" + netip.AddrPortFrom(h.addr, port).String()
	var attrs map[string]string
	for i, path := range []string{"/ipp/print", "/"} {
		uri := "ipp://" + netip.AddrPortFrom(h.addr, port).String() + path
		code, body, err := post(ctx, client, base+path, "application/ipp", IPPRequest(uri, uint32(i+1)))
		if err != nil {
			return
		}
		if code == 404 {
			continue
		}
		status, a, err := ParseIPPResponse(body)
		if err != nil || status >= 0x0400 {
			return
		}
		attrs = a
		break
	}
	if attrs == nil {
		return
	}
	o := sc.obs(netscan.SourceIPP, h)
	o.Add(netscan.KeyIPPMakeModel, attrs["printer-make-and-model"])
	o.Add(netscan.KeyIPPFirmware, attrs["printer-firmware-string-version"])
	o.Add(netscan.KeyIPPDeviceID, attrs["printer-device-id"])
	o.Add(netscan.KeyIPPSerial, attrs["printer-serial-number"])
	if id := attrs["printer-device-id"]; id != "" && o.Get(netscan.KeyIPPMakeModel) == "" {
		mfg, mdl := DeviceID(id)
		o.Add(netscan.KeyIPPMakeModel, strings.TrimSpace(mfg+" "+mdl))
	}
	if len(o.Facts) > 0 {
		sc.send(o)
	}
}

// DeviceID returns the manufacturer and model of an IEEE 1284 device ID
// ("MFG:Zebra;MDL:ZT410;CMD:ZPL;").
func DeviceID(id string) (mfg, mdl string) {
	for _, kv := range strings.Split(id, ";") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			continue
		}
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "MFG", "MANUFACTURER":
			mfg = strings.TrimSpace(v)
		case "MDL", "MODEL":
			mdl = strings.TrimSpace(v)
		}
	}
	return mfg, mdl
}
