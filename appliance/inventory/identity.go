package inventory

import (
	"strings"

	"github.com/patchgate/patchgate/netscan"
)

// Identifier kinds, strongest first.
const (
	idMAC      = "mac"
	idAgent    = "agent" // an enrolled agent's ID
	idSerial   = "serial"
	idEngine   = "snmp-engine"
	idUDN      = "upnp-udn"
	idClientID = "dhcp-client-id"
	idName     = "name" // a host name: only for a device with a random MAC
	idAddr     = "addr" // an address: only for a device seen without any MAC (routed)
)

// Fact keys of agent reports (agents are another source of observations).
const (
	KeyAgentID     netscan.Key = "agent.id"
	KeyAgentOS     netscan.Key = "agent.os" // "Windows 11 Pro 23H2 (22631.4037)"
	KeyAgentSerial netscan.Key = "agent.serial"
	// SourceAgent is the source of observations made from agent check-ins.
	SourceAgent netscan.Source = "agent"
)

// idKinds orders the kinds by strength.
var idKinds = []string{idMAC, idAgent, idSerial, idEngine, idUDN, idClientID, idName, idAddr}

type identifier struct{ kind, value string }

func (i identifier) String() string { return i.kind + ":" + i.value }

// identifiers returns the stable identifiers an observation carries, strongest first.
// A locally administered MAC is not one; a DHCP client ID that only repeats such a
// MAC is not one either.
func identifiers(o netscan.Observation) []identifier {
	var ids []identifier
	add := func(kind, v string) {
		v = strings.TrimSpace(v)
		if v == "" {
			return
		}
		for _, x := range ids {
			if x.kind == kind && x.value == v {
				return
			}
		}
		ids = append(ids, identifier{kind, v})
	}
	random := o.MAC.Unicast() && o.MAC.LocallyAdministered()
	if o.MAC.Unicast() && !random {
		add(idMAC, o.MAC.String())
	}
	add(idAgent, o.Get(KeyAgentID))
	for _, k := range []netscan.Key{KeyAgentSerial, netscan.KeySNMPSerial, netscan.KeyIPPSerial, netscan.KeyUPnPSerial} {
		if s := o.Get(k); usefulSerial(s) {
			add(idSerial, strings.ToUpper(s))
		}
	}
	add(idEngine, strings.ToLower(o.Get(netscan.KeySNMPEngineID)))
	add(idUDN, strings.ToLower(o.Get(netscan.KeyUPnPUDN)))
	if cid := strings.ToLower(o.Get(netscan.KeyDHCPClientID)); cid != "" {
		macHex := strings.ReplaceAll(o.MAC.String(), ":", "")
		if !(random && (cid == "01"+macHex || cid == macHex)) {
			add(idClientID, cid)
		}
	}
	if random {
		if h := o.Get(netscan.KeyHostname); h != "" {
			add(idName, strings.ToLower(h))
		}
	}
	if o.MAC.IsZero() && o.Addr.IsValid() && len(ids) == 0 {
		add(idAddr, o.Addr.String())
	}
	return ids
}

// usefulSerial rejects placeholders devices report instead of a serial.
func usefulSerial(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 4 {
		return false
	}
	switch strings.ToLower(s) {
	case "unknown", "none", "n/a", "0000000000", "123456789", "serial", "to be filled by o.e.m.", "default string":
		return false
	}
	return strings.Trim(s, "0") != ""
}

// keyOf returns the kind an asset ID is keyed on.
func keyOf(id string) string {
	kind, _, _ := strings.Cut(id, ":")
	return kind
}
