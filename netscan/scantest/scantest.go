// Package scantest gives scanner tests something to find without leaving the host: a
// TCP listener on a loopback address (any of 127.0.0.0/8 on Linux) standing in for a
// device with one open port, and the answer of an IPP printer.
package scantest

import (
	"encoding/binary"
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

// IPPAnswer encodes a printer's successful answer to Get-Printer-Attributes request id:
// the operation attributes (charset, language), then attrs as printer attributes of
// type text, name and value in turn.
func IPPAnswer(id uint32, attrs ...string) []byte {
	b := []byte{1, 1, 0, 0} // IPP/1.1, successful-ok
	b = binary.BigEndian.AppendUint32(b, id)
	attr := func(tag byte, name, val string) {
		b = append(b, tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
		b = append(b, val...)
	}
	b = append(b, 0x01) // operation attributes
	attr(0x47, "attributes-charset", "utf-8")
	attr(0x48, "attributes-natural-language", "en")
	b = append(b, 0x04) // printer attributes
	for i := 0; i+1 < len(attrs); i += 2 {
		attr(0x41, attrs[i], attrs[i+1])
	}
	return append(b, 0x03) // end
}
