package passive

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/netscan"
)

var (
	ssdpNotify   = []byte("NOTIFY * HTTP/1.1")
	ssdpResponse = []byte("HTTP/1.1 200")
	ssdpSearch   = []byte("M-SEARCH * HTTP/1.1")
)

// ParseSSDP reads an SSDP NOTIFY or M-SEARCH answer (a UDP payload) into o:
// SERVER, LOCATION, NT or ST, and the UDN from USN. It reports whether the
// message was one of those two kinds; an M-SEARCH request (a control point
// looking) gives false, nil, and anything else is malformed.
func ParseSSDP(payload []byte, o *netscan.Observation) (bool, error) {
	line, rest, _ := bytes.Cut(payload, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	switch {
	case bytes.EqualFold(line, ssdpSearch):
		return false, nil
	case bytes.EqualFold(line, ssdpNotify), bytes.HasPrefix(line, ssdpResponse):
	default:
		return false, fmt.Errorf("%w: ssdp: start line %.40q", ErrMalformed, line)
	}
	found := false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return false, fmt.Errorf("%w: ssdp: header line %.40q", ErrMalformed, line)
		}
		val := string(bytes.TrimSpace(v))
		switch strings.ToUpper(string(bytes.TrimSpace(k))) {
		case "SERVER":
			o.Add(netscan.KeySSDPServer, val)
		case "LOCATION":
			o.Add(netscan.KeySSDPLocation, val)
		case "NT", "ST":
			o.Add(netscan.KeySSDPType, val)
		case "USN":
			udn, _, _ := strings.Cut(val, "::")
			if strings.HasPrefix(strings.ToLower(udn), "uuid:") {
				o.Add(netscan.KeyUPnPUDN, strings.ToLower(udn))
			}
		default:
			continue
		}
		found = true
	}
	return found, nil
}
