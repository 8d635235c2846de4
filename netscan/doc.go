// Package netscan holds what the discovery side of Patchgate shares: the
// Observation that every passive decoder and active probe produces, the
// well-known fact keys they fill in, and the MAC address type.
//
// The work itself lives in the subpackages:
//   - netscan/passive decodes captured frames (ARP, DHCPv4, mDNS/DNS-SD,
//     SSDP, LLDP, NetBIOS name service) into observations;
//   - netscan/active probes configured subnets gently (ARP sweep, TCP
//     connect, SNMP GET, mDNS, SSDP, HTTP, IPP) under hard safety limits;
//   - netscan/fingerprint turns the facts of one device into a device type,
//     vendor, model, firmware and OS, each with a confidence and the evidence
//     that decided it.
//
// netscan imports nothing else of the project.
package netscan
