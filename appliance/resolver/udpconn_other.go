//go:build !linux

package resolver

import (
	"context"
	"net"
)

// udpConn is a UDP socket in the runtime's network poller (udpconn_linux.go waits in
// the kernel instead).
type udpConn = net.UDPConn

// listenUDP binds a UDP socket to addr, with SO_REUSEPORT when reuse is set.
func listenUDP(addr string, reuse bool) (*udpConn, error) {
	lc := net.ListenConfig{}
	if reuse {
		lc.Control = setReusePort
	}
	// Binding does not block: no context to honour.
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	u := pc.(*net.UDPConn)
	_ = u.SetReadBuffer(1 << 20) // rides out bursts; the system caps it
	return u, nil
}
