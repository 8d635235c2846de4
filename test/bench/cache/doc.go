// Package cache benchmarks Patchgate's update cache against Debian's nginx
// with proxy_cache: cached-hit throughput (requests/s, MiB/s) and server CPU
// seconds per GiB for 4 KiB, 1 MiB and 100 MiB objects, and cold-request
// coalescing. Both servers run as their own processes on loopback, fed by
// the same load generator in this process, in interleaved turns (A B B A)
// so that other work on the machine weighs on both alike; for 4 KiB a
// constant-answer handler in the Patchgate process shows net/http's floor.
//
// That client shares the CPUs with the servers and saturates before either
// server: BenchmarkServerBoundHit compares the Lean loop and nginx for 4 KiB
// again with wrk (Debian's wrk, apt-get install wrk; skipped without it) as
// the load generator, pinned to one CPU and each server to the other.
//
//	go test -run '^$' -bench . -benchtime 3x ./test/bench/cache/
//	go test -run '^$' -bench 'ServerBoundHit/4KiB' -benchtime 3x ./test/bench/cache/
package cache
