// Package gateway benchmarks the egress gateway in the test/gateway namespace lab: the
// time from a DNS answer handed to Gateway.Learned to its address being in the
// nftables set (p50/p99, one answer at a time and in bursts), side by side with the
// way a script would do it (one `nft add element` per answer); and TCP forwarding
// throughput (iperf3) from the device through the appliance to the internet with the
// ruleset loaded versus no ruleset. Results go to test/bench/RESULTS.md.
package gateway
