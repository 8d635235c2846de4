// Package shaper benchmarks the cache's bandwidth shaper on loopback: how close the
// total served stays to the site cap and how fairly it is shared (Jain's index over
// clients) with 1, 10 and 100 concurrent clients, each from its own loopback address;
// and the server's CPU seconds per GiB served through the real cache with shaping off
// (sendfile), with a shaper that caps nothing (counting only), and with caps that every
// chunk passes through. The server is this test binary re-executed as its own process,
// so its CPU is measured apart from the load generator's.
//
//	go test -run '^$' -bench . -benchtime 3x ./test/bench/shaper/
package shaper
