// Package inventory keeps the appliance's assets: every device discovery found,
// merged from netscan observations, classified by netscan/fingerprint, with the
// attributes administrators add (owner, location, criticality, ePHI exposure,
// support status, ring, last patch, compliance, tags).
//
// An asset is keyed on a universally administered MAC when there is one, otherwise on
// the strongest stable identifier seen (serial number, SNMP engine ID, UPnP UDN, DHCP
// client ID, then a host name; a routed device seen only by address is keyed on its
// address); never on a locally administered ("randomised") MAC alone: such a device
// is a sighting until something stable shows up. Admin-set attributes are stored
// apart from observed ones and observations never change them. New devices and
// firmware changes are events for an EventSink (the audit log) and metrics.
//
// Discovery is the service that feeds the inventory: passive capture on configured
// interfaces and active scans on a schedule and on demand. See README.md.
package inventory
