package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpConn is a UDP socket that its readers wait on either in the kernel (a blocking
// recvmmsg) or in the runtime's network poller.
//
// In the kernel where the process has two Ps or more. At a few thousand queries a second
// nearly every datagram wakes the reader by itself, so the wake-up is most of a query's
// cost: through the poller it is an epoll_pwait return on some thread, the poller
// handing the goroutine to the scheduler, and the goroutine running and parking again; a
// thread blocked in recvmmsg is woken by the kernel with the datagram in hand, as
// Unbound's threads are. The socket is then never given to the poller, which would wake
// its own thread for each datagram as well. At 10k QPS on two CPUs this took the CPU per
// query from about Unbound's to below it (test/bench/RESULTS.md).
//
// In the poller with one P. A goroutine in a system call keeps its P only while another
// P is idle: with one P the runtime's monitor takes it during every datagram's wait, and
// the reader must get a P back each time; measured, 1.4-1.6x the poller's CPU per query
// (the same holds, less, while a CPU-bound goroutine keeps every other P busy).
//
// Answers from other goroutines (forwarded queries) are sent with MSG_DONTWAIT either
// way; Close shuts the socket down for reading first, which wakes readers waiting in
// recvmmsg.
type udpConn struct {
	f        *os.File // owns the descriptor
	raw      syscall.RawConn
	blocking bool // readers wait in recvmmsg; else in the poller
	local    *net.UDPAddr
	ipv4     bool // an AF_INET socket; else AF_INET6, which reaches IPv4 clients as ::ffff:a.b.c.d
	closed   atomic.Bool
}

// listenUDP binds a UDP socket to addr ("host:port", an IP literal or a name the system
// resolves; an empty or wildcard host listens on IPv6 and IPv4 where the system has
// IPv6), with SO_REUSEPORT when reuse is set; blocking when its readers are to wait in
// the kernel (udpWaitInKernel), else non-blocking and in the poller.
func listenUDP(addr string, reuse bool) (*udpConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	ip = ip.Unmap()
	family, sa := unix.AF_INET6, unix.Sockaddr(nil)
	switch {
	case !ip.IsValid() || ip.IsUnspecified(): // as net.ListenPacket: dual stack where possible
		sa = &unix.SockaddrInet6{Port: ua.Port}
	case ip.Is4():
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ua.Port, Addr: ip.As4()}
	default:
		sa = &unix.SockaddrInet6{Port: ua.Port, Addr: ip.As16(), ZoneId: zoneID(ua.Zone)}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if errors.Is(err, unix.EAFNOSUPPORT) && (!ip.IsValid() || ip.IsUnspecified()) {
		// No IPv6 on this system: the wildcard on IPv4 alone.
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ua.Port}
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	}
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := bindUDP(fd, family, sa, reuse); err != nil {
		unix.Close(fd)
		return nil, err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	blocking := udpWaitInKernel()
	if !blocking {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("setnonblock", err)
		}
	}
	// os.NewFile puts a non-blocking descriptor in the poller and leaves a blocking one
	// out of it.
	c := &udpConn{f: os.NewFile(uintptr(fd), "udp "+addr), blocking: blocking, local: sockaddrUDP(bound), ipv4: family == unix.AF_INET}
	if c.raw, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, err
	}
	return c, nil
}

// bindUDP sets the socket's options and binds it.
func bindUDP(fd, family int, sa unix.Sockaddr, reuse bool) error {
	if family == unix.AF_INET6 {
		// Both families on a wildcard socket, as net.ListenPacket("udp", ":53") does.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}
	// A larger receive queue rides out bursts; the kernel caps it at rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

func sockaddrUDP(sa unix.Sockaddr) *net.UDPAddr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.UDPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.UDPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.UDPAddr{}
}

// LocalAddr is the bound address.
func (c *udpConn) LocalAddr() net.Addr { return c.local }

// Close wakes the readers and releases the socket once the last of them has returned.
// It returns net.ErrClosed when called again.
func (c *udpConn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	// On an unconnected UDP socket shutdown reports ENOTCONN but still marks it shut
	// for reading, and a recvmmsg waiting on it returns at once.
	c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RD) })
	return c.f.Close()
}

// WriteToUDPAddrPort sends b to addr without waiting: a datagram the send queue has no
// room for is dropped, as one lost on the way would be.
func (c *udpConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	var sa unix.Sockaddr
	if ip := addr.Addr().Unmap(); c.ipv4 && ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	var serr error
	if err := c.raw.Control(func(fd uintptr) { serr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, sa) }); err != nil {
		return 0, net.ErrClosed
	}
	if serr != nil {
		return 0, fmt.Errorf("resolver: send to %s: %w", addr, serr)
	}
	return len(b), nil
}
