// Package active probes configured subnets for devices, gently.
//
// A Scanner finds live hosts (an ARP sweep on subnets the interface is on;
// TCP connect to a few ports elsewhere) and then asks each live host, one
// connection at a time, what it is: TCP connect to a short port list, one
// SNMP v2c GET (sysDescr, sysObjectID, sysName, snmpEngineID, Printer-MIB
// serial, Host-Resources model), a unicast mDNS DNS-SD query, a unicast SSDP
// M-SEARCH and the UPnP description it points to, an HTTP GET / for the
// Server header and <title>, and IPP Get-Printer-Attributes on 631.
//
// Safety comes first, and is enforced in code, not left to configuration:
// ports on the deny-list (515, 9100-9107, 9999) are never sent a byte — at
// most a connect and a close; every host is probed by one goroutine, so one
// connection at a time; every packet waits for a per-host token bucket
// (default 40 packets/s) and a global one (default 1000 packets/s);
// excluded hosts and subnets, and hosts an Exclude callback rejects (assets
// tagged fragile), get no packet addressed to them at all; connections are
// always closed; only ordinary requests are sent (no OS-detection probes,
// no odd flags), and multicast queries, which reach excluded hosts too, are
// not sent. Defaults are listed in README.md.
package active
