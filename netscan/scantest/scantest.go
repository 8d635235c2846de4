// Package scantest gives scanner tests something to find without leaving the host: a
// TCP listener on a loopback address (any of 127.0.0.0/8 on Linux) standing in for a
// device with one open port.
package scantest

import (
	"net"
	"testing"
)

// OpenPort listens for TCP on addr ("127.0.9.1:0" for any free port) and accepts and
// closes every connection until the test ends. It returns the port, and skips the test
// when it cannot listen there (a port below 1024 needs root).
func OpenPort(t testing.TB, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
