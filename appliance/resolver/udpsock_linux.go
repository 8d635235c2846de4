package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
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
// The reader waits for datagrams in the kernel, inside recvmmsg, or in the runtime's
// network poller, as its udpConn was opened (udpConn says when and why). The sends are
// raw, non-blocking system calls, which skip the runtime's bookkeeping for calls that may
// block.
//
// A udpSocket is not safe for concurrent use; answers made on other goroutines go
// through conn.
type udpSocket struct {
	conn *udpConn

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

	// Method values made once: no closure per call.
	waitFn         func(fd uintptr)      // the kernel-wait loop
	recvFn, sendFn func(fd uintptr) bool // the poller-wait loop; one send
	handle         func(n int)           // answers a batch (serve's argument)
	err            error                 // why waitFn returned
}

func newUDPSocket(c *udpConn, size int) (*udpSocket, error) {
	s := &udpSocket{conn: c}
	for i := range udpBatch {
		s.bufs[i] = make([]byte, size)
		s.answerBufs[i] = make([]byte, size)
		s.iov[i] = unix.Iovec{Base: &s.bufs[i][0]}
		s.iov[i].SetLen(size)
		s.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.from[i]))
		s.in[i].Hdr.Iov = &s.iov[i]
		s.in[i].Hdr.SetIovlen(1)
	}
	s.waitFn, s.recvFn, s.sendFn = s.waitInKernel, s.recv, s.send
	return s, nil
}

// serve reads datagrams in batches until the socket is closed: for each batch it calls
// handle(n), which answers datagrams 0..n-1 (reply), then sends the answers. It
// returns the error that ended it (net.ErrClosed once closed).
func (s *udpSocket) serve(handle func(n int)) error {
	s.handle, s.err = handle, nil
	if !s.conn.blocking {
		// The whole loop runs inside one RawConn.Read, whose callback (recv) returns
		// false only when the socket's queue is drained: the runtime then parks the
		// goroutine in the poller until a datagram arrives. A RawConn.Read per batch
		// would clear the poller's readiness when it starts and so must try a recvmmsg
		// first, which at a few thousand queries a second finds nothing (EAGAIN) after
		// nearly every batch. Here a recvmmsg that took fewer than udpBatch datagrams
		// drained the queue, so the loop waits at once; every datagram queued after it
		// signals the edge-triggered poller, so none waits unseen.
		err := s.conn.raw.Read(s.recvFn) // recv never returns true
		if s.conn.closed.Load() {
			return net.ErrClosed
		}
		return err
	}
	if err := s.conn.raw.Control(s.waitFn); err != nil {
		return net.ErrClosed
	}
	return s.err
}

// yieldEvery is how long a reader waiting in the kernel that is never out of datagrams
// goes on before it lets the scheduler run. The runtime counts a goroutine that has not
// been rescheduled for 10ms as running too long; one in a system call then has its P
// taken from it on every tick of the runtime's monitor, and each time it comes back from
// recvmmsg it must find a P again, often on another thread: measured, that doubled the
// CPU per query.
const yieldEvery = 2 * time.Millisecond

// waitInKernel waits in recvmmsg for the next datagrams, answers them, and again, until
// the socket is shut down for reading (Close).
func (s *udpSocket) waitInKernel(fd uintptr) {
	last := time.Now()
	for {
		s.resetNames()
		// MSG_WAITFORONE: wait for the first datagram only, then take what is queued.
		n, _, e := syscall.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.in[0])), udpBatch,
			unix.MSG_WAITFORONE, 0, 0)
		if s.conn.closed.Load() {
			s.err = net.ErrClosed
			return
		}
		if e != 0 || n == 0 {
			// EINTR, or an error about an earlier datagram (ECONNREFUSED from an ICMP
			// port unreachable), which reading again clears.
			continue
		}
		s.answerBatch(int(n))
		if now := time.Now(); now.Sub(last) > yieldEvery {
			runtime.Gosched()
			last = now
		}
	}
}

// recv reads and answers batches until the queue is drained; false asks the poller to
// wait for a datagram.
func (s *udpSocket) recv(fd uintptr) bool {
	for failures := 0; ; {
		s.resetNames()
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
		s.answerBatch(int(n))
		if n < udpBatch {
			return false
		}
	}
}

// resetNames gives every datagram of the batch room for its sender's address again.
func (s *udpSocket) resetNames() {
	for i := range udpBatch {
		s.in[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.from[i]))
	}
}

// answerBatch answers datagrams 0..n-1 and sends the answers.
func (s *udpSocket) answerBatch(n int) {
	s.n = n
	s.handle(n)
	s.flush()
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
// datagram lost on the way would be; when the send queue is full it waits for room.
func (s *udpSocket) flush() {
	s.sent = 0
	for s.sent < s.nOut {
		if err := s.conn.raw.Write(s.sendFn); err != nil {
			break // closed
		}
	}
	s.nOut = 0
}

// send is one non-blocking sendmmsg of the answers not sent yet. When the send queue is
// full, a socket in the poller returns false (the poller waits for room); a blocking one
// sends again, waiting in the kernel.
func (s *udpSocket) send(fd uintptr) bool {
	n, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.out[s.sent])), uintptr(s.nOut-s.sent),
		unix.MSG_DONTWAIT, 0, 0)
	if e == syscall.EAGAIN && s.conn.blocking {
		n, _, e = syscall.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.out[s.sent])), uintptr(s.nOut-s.sent), 0, 0, 0)
	}
	switch {
	case e == syscall.EAGAIN || e == syscall.EINTR:
		return s.conn.blocking // flush tries again at once; the poller waits for room
	case e != 0:
		s.sent++ // the first one failed: drop it
	default:
		s.sent += int(n)
	}
	return true
}
