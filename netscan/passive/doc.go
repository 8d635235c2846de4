// Package passive turns overheard frames into netscan observations.
//
// A Decoder decodes one Ethernet frame at a time with a gopacket
// DecodingLayerParser (no allocation for a frame that yields nothing, and
// none for an ARP frame) and understands ARP, DHCPv4 (hostname, vendor class,
// parameter request list, client ID), mDNS/DNS-SD (service types, host names,
// TXT ty/product/usb_MFG/usb_MDL), SSDP NOTIFY and M-SEARCH answers (SERVER,
// LOCATION, NT/ST, USN), LLDP (chassis, system name and description,
// capabilities, management address) and the NetBIOS name service
// (registrations and positive answers). A malformed frame is an error to
// count, never a panic.
//
// A Capture reads frames from an AF_PACKET socket (gopacket's afpacket, no
// cgo) behind a BPF filter that lets through only those protocols, runs the
// Decoder, drops repeats of the same observation within a window, and counts
// frames seen, decoded and dropped, and the kernel's drops, on the Metrics it
// is given. See README.md for its configuration and metrics.
package passive
