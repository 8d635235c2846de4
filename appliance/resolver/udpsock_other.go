//go:build !linux

package resolver

import (
	"net"
	"net/netip"
)

// udpSocket reads queries from one UDP socket and sends their answers, one at a time
// here (udpsock_linux.go does it in batches), for one reader goroutine. It is not safe
// for concurrent use.
type udpSocket struct {
	conn   *net.UDPConn
	buf    []byte
	n      int
	from   netip.AddrPort
	answer []byte
	queued []byte
}

func newUDPSocket(c *net.UDPConn, size int) (*udpSocket, error) {
	return &udpSocket{conn: c, buf: make([]byte, size), answer: make([]byte, size)}, nil
}

// serve reads datagrams one at a time and calls handle(1) for each, then sends its
// answer; it returns the first read error.
func (s *udpSocket) serve(handle func(n int)) error {
	for {
		n, err := s.read()
		if err != nil {
			return err
		}
		handle(n)
		s.flush()
	}
}

// read waits for a datagram and reads it; it returns 1.
func (s *udpSocket) read() (int, error) {
	n, from, err := s.conn.ReadFromUDPAddrPort(s.buf)
	if err != nil {
		return 0, err
	}
	s.n, s.from = n, from
	return 1, nil
}

func (s *udpSocket) datagram(int) ([]byte, netip.AddrPort, bool) { return s.buf[:s.n], s.from, true }

func (s *udpSocket) answerBuf(int) []byte { return s.answer }

func (s *udpSocket) reply(_ int, b []byte) { s.queued = b }

func (s *udpSocket) flush() {
	if len(s.queued) > 0 {
		s.conn.WriteToUDPAddrPort(s.queued, s.from)
	}
	s.queued = nil
}
