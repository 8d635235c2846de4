// Package fleet benchmarks one parent appliance and N child appliances, each a
// `patchgate serve` process on loopback, fetching the same release: the parent mirrors
// the upstream (a tuftest repository in the benchmark process), every child mirrors
// the parent (parent: section), and a device GET on every child pulls the release
// through. It reports the upstream fetches (want 1), the parent's serves of the target
// (want N), the parent's CPU per child and the time until every child holds the
// release (from when every child has verified the parent's metadata; the start-up is
// reported apart). It skips unless PG_BENCH_FLEET is set (make bench leaves it out); run it
// alone:
//
//	PG_BENCH_FLEET=1 go test -run '^$' -bench Fleet -benchtime 1x -timeout 30m ./test/bench/fleet
//
// Results: test/bench/RESULTS.md, "Fleet (issue 21)".
package fleet
