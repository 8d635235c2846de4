// Package cache benchmarks Patchgate's update cache against Debian's nginx
// with proxy_cache: cached-hit throughput (requests/s, MiB/s) and server CPU
// seconds per GiB for 4 KiB, 1 MiB and 100 MiB objects, and cold-request
// coalescing. Both servers run as their own processes on loopback, fed by
// the same load generator in this process, in interleaved turns (A B B A)
// so that other work on the machine weighs on both alike; for 4 KiB a
// constant-answer handler in the Patchgate process shows net/http's floor.
//
//	go test -run '^$' -bench . -benchtime 3x ./test/bench/cache/
package cache
