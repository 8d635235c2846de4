package active

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/patchgate/patchgate/netscan"
)

// The OIDs of the SNMP probe: single GETs, never walks.
var (
	snmpSystemOIDs = []string{
		"1.3.6.1.2.1.1.1.0", // sysDescr
		"1.3.6.1.2.1.1.2.0", // sysObjectID
		"1.3.6.1.2.1.1.5.0", // sysName
	}
	snmpExtraOIDs = []string{
		"1.3.6.1.6.3.10.2.1.1.0",    // snmpEngineID
		"1.3.6.1.2.1.43.5.1.1.17.1", // Printer-MIB prtGeneralSerialNumber.1
		"1.3.6.1.2.1.25.3.2.1.3.1",  // Host-Resources hrDeviceDescr.1
	}
	snmpKeys = map[string]netscan.Key{
		"1.3.6.1.2.1.1.1.0":         netscan.KeySNMPSysDescr,
		"1.3.6.1.2.1.1.2.0":         netscan.KeySNMPSysObjectID,
		"1.3.6.1.2.1.1.5.0":         netscan.KeySNMPSysName,
		"1.3.6.1.6.3.10.2.1.1.0":    netscan.KeySNMPEngineID,
		"1.3.6.1.2.1.43.5.1.1.17.1": netscan.KeySNMPSerial,
		"1.3.6.1.2.1.25.3.2.1.3.1":  netscan.KeySNMPModel,
	}
)

// probeSNMP sends one SNMP v2c GET of the system group and the printer
// identity OIDs per community until one answers. An agent that refuses the
// whole PDU (an SNMPv1-style noSuchName) gets one more GET of the system
// group alone.
func (sc *scan) probeSNMP(ctx context.Context, h *host) {
	for _, community := range sc.cfg.Communities {
		if ctx.Err() != nil {
			return
		}
		g := &gosnmp.GoSNMP{
			Target:    h.addr.String(),
			Port:      sc.cfg.SNMPPort,
			Community: community,
			Version:   gosnmp.Version2c,
			Timeout:   sc.cfg.Timeout,
			Retries:   0,
			Context:   ctx,
			MaxOids:   len(snmpSystemOIDs) + len(snmpExtraOIDs),
			PreSend:   func(*gosnmp.GoSNMP) { sc.charge(ctx, h, ProbeSNMP, 1) },
		}
		if err := g.Connect(); err != nil {
			return
		}
		res, err := g.Get(append(append([]string{}, snmpSystemOIDs...), snmpExtraOIDs...))
		if err == nil && res.Error != gosnmp.NoError {
			res, err = g.Get(snmpSystemOIDs)
		}
		g.Conn.Close()
		if err != nil {
			if isTimeout(err) {
				continue // wrong community, or no agent: try the next community
			}
			return // refused (ICMP port unreachable): no agent
		}
		if res.Error != gosnmp.NoError {
			continue
		}
		o := sc.obs(netscan.SourceSNMP, h)
		for _, v := range res.Variables {
			k, ok := snmpKeys[strings.TrimPrefix(v.Name, ".")]
			if !ok {
				continue
			}
			switch v.Type {
			case gosnmp.OctetString:
				b, _ := v.Value.([]byte)
				if k == netscan.KeySNMPEngineID {
					o.Add(k, hex.EncodeToString(b))
				} else {
					o.Add(k, string(b))
				}
			case gosnmp.ObjectIdentifier:
				s, _ := v.Value.(string)
				o.Add(k, strings.TrimPrefix(s, "."))
			}
		}
		if s := o.Get(netscan.KeySNMPSysName); s != "" {
			o.Add(netscan.KeyHostname, s)
		}
		if len(o.Facts) > 0 {
			sc.send(o)
		}
		return
	}
}

func isTimeout(err error) bool {
	if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), "timeout")
}
