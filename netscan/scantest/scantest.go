// Package scantest gives scanner tests something to find without leaving the host: a
// TCP listener on a loopback address (any of 127.0.0.0/8 on Linux) standing in for a
// device with one open port, and the answer of an IPP printer; and the frames of
// recorded captures (pcap files).
package scantest

import (
	"encoding/binary"
	"net"
	"os"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
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

// OpenPcap opens the capture file at path for reading until the test ends, and fails
// the test when it cannot be opened or is not a pcap file.
func OpenPcap(t testing.TB, path string) *pcapgo.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return r
}

// ReadPcap is every frame of the capture file at path, up to the first it cannot read.
func ReadPcap(t testing.TB, path string) [][]byte {
	t.Helper()
	r := OpenPcap(t, path)
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return frames
		}
		frames = append(frames, data)
	}
}
