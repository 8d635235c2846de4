// Package scan benchmarks discovery: Patchgate's ARP sweep against
// Debian's `nmap -sn -n` and `arp-scan`, side by side in one run, in a
// network-namespace lab of a /24 with N live hosts (targets exist only
// inside the lab); and the passive decoder's rate replaying recorded frames
// on one core. Results go to test/bench/RESULTS.md.
package scan
