package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one read takes at most, and how many answers one
// write sends.
const udpBatch = 16

// udpSocket reads queries from one UDP socket in batches and sends their answers in
// batches, for one reader goroutine: a recvmmsg takes every datagram waiting (up to
// udpBatch) and a sendmmsg sends all their answers. On this platform a system call costs
// microseconds, more than answering a query from memory, so the calls per query matter
// most: under load this makes far fewer than a recvfrom and a sendto per query.
//
// The calls are made as raw system calls: both are non-blocking (waiting for a packet is
// left to the runtime's network poller, through syscall.RawConn), and a raw call skips
// the runtime's bookkeeping for calls that may block, which wakes the runtime's monitor
// thread whenever the process was idle before the call (at a few thousand queries a
// second: a futex wake and a sleep per packet).
//
// A udpSocket is not safe for concurrent use; answers made on other goroutines go
// through conn.
type udpSocket struct {
	conn *net.UDPConn
	raw  syscall.RawConn

	// The batch read: datagram i is bufs[i][:in[i].Len] from from[i].
	bufs [udpBatch][]byte
	from [udpBatch]unix.RawSockaddrInet6 // large enough for either family
	iov  [udpBatch]unix.Iovec
	in   [udpBatch]unix.Mmsghdr
	n    int

	// The answers to send: out[:nOut], each to the sender of a datagram of the batch.
	answerBufs [udpBatch][]byte
	outIov     [udpBatch]unix.Iovec
	out        [udpBatch]unix.Mmsghdr
	nOut       int
	sent       int // of out[:nOut], by the send in progress

	recvFn, sendFn func(fd uintptr) bool // method values made once: no closure per call
	handle         func(n int)           // answers a batch (serve's argument)
}

func newUDPSocket(c *net.UDPConn, size int) (*udpSocket, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &udpSocket{conn: c, raw: raw}
	for i := range udpBatch {
		s.bufs[i] = make([]byte, size)
		s.answerBufs[i] = make([]byte, size)
		s.iov[i] = unix.Iovec{Base: &s.bufs[i][0]}
		s.iov[i].SetLen(size)
		s.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.from[i]))
		s.in[i].Hdr.Iov = &s.iov[i]
		s.in[i].Hdr.SetIovlen(1)
	}
	s.recvFn, s.sendFn = s.recv, s.send
	return s, nil
}

// serve reads datagrams in batches until the socket is closed: for each batch it calls
// handle(n), which answers datagrams 0..n-1 (reply), then sends the answers. It
// returns the error that ended it (net.ErrClosed once closed).
//
// The whole loop runs inside one RawConn.Read, whose callback (recv) returns false
// only when the socket's queue is drained: the runtime then parks the goroutine in the
// poller until a datagram arrives. A RawConn.Read per batch would clear the poller's
// readiness when it starts and so must try a recvmmsg first, which at a few thousand
// queries a second finds nothing (EAGAIN) after nearly every batch: one system call per
// wake-up for nothing. Here a recvmmsg that took fewer than udpBatch datagrams drained
// the queue, so the loop waits at once; every datagram queued after it signals the
// edge-triggered poller, so none waits unseen.
func (s *udpSocket) serve(handle func(n int)) error {
	s.handle = handle
	return s.raw.Read(s.recvFn) // recv never returns true
}

// recv reads and answers batches until the queue is drained; false asks the poller to
// wait for a datagram.
func (s *udpSocket) recv(fd uintptr) bool {
	for failures := 0; ; {
		for i := range udpBatch {
			s.in[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.from[i]))
		}
		n, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.in[0])), udpBatch,
			unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EAGAIN:
			return false
		case e == syscall.EINTR:
			continue
		case e != 0:
			// An error about an earlier datagram (ECONNREFUSED from an ICMP port
			// unreachable): reading again clears it; datagrams may be queued
			// behind it, which would signal no new edge.
			if failures++; failures > udpBatch {
				return false
			}
			continue
		}
		failures = 0
		s.n = int(n)
		s.handle(s.n)
		s.flush()
		if s.n < udpBatch {
			return false
		}
	}
}

// datagram returns datagram i of the batch and its sender; ok is false when the sender
// is not an IP address (which cannot happen on a UDP socket).
func (s *udpSocket) datagram(i int) (pkt []byte, from netip.AddrPort, ok bool) {
	pkt = s.bufs[i][:s.in[i].Len]
	sa := &s.from[i]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return pkt, netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		return pkt, netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return nil, netip.AddrPort{}, false
}

// answerBuf is room to pack the answer to datagram i in.
func (s *udpSocket) answerBuf(i int) []byte { return s.answerBufs[i] }

// reply queues b as the answer to datagram i of the batch; flush sends it. b must stay
// untouched until then.
func (s *udpSocket) reply(i int, b []byte) {
	if len(b) == 0 {
		return
	}
	j := s.nOut
	s.nOut++
	s.outIov[j] = unix.Iovec{Base: &b[0]}
	s.outIov[j].SetLen(len(b))
	s.out[j].Hdr = s.in[i].Hdr // the sender's address as the kernel gave it
	s.out[j].Hdr.Iov = &s.outIov[j]
	s.out[j].Hdr.Flags = 0
}

// flush sends the queued answers. An answer the kernel refuses is dropped, as a
// datagram lost on the way would be.
func (s *udpSocket) flush() {
	s.sent = 0
	for s.sent < s.nOut {
		if err := s.raw.Write(s.sendFn); err != nil {
			break // closed
		}
	}
	s.nOut = 0
}

// send is one non-blocking sendmmsg of the answers not sent yet; false (a full send
// buffer) asks the poller to wait.
func (s *udpSocket) send(fd uintptr) bool {
	n, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.out[s.sent])), uintptr(s.nOut-s.sent),
		unix.MSG_DONTWAIT, 0, 0)
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR:
		return false
	case e != 0:
		s.sent++ // the first one failed: drop it
	default:
		s.sent += int(n)
	}
	return true
}
