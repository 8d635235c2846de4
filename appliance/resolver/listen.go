package resolver

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"syscall"
)

// listener is one listen address: its UDP sockets, each served by its own reader
// goroutine, and its TCP listener on the same port.
type listener struct {
	udp []*udpConn
	tcp *net.TCPListener
}

// listenBoth binds addr over UDP and TCP, on the same port also when addr's port is 0.
// On Linux it opens n UDP sockets sharing the port with SO_REUSEPORT, so that the
// kernel spreads clients over n readers, each with its own socket, as Unbound does with
// so-reuseport: readers sharing one socket would take turns through its lock and wake
// each other for every packet. Elsewhere it opens one UDP socket.
func listenBoth(addr string, n int) (listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return listener{}, fmt.Errorf("resolver: listen %s: %w", addr, err)
	}
	for try := 0; ; try++ {
		// A plain socket first: it fails when anything holds the port (a socket with
		// SO_REUSEPORT alone could join another server's group on it), and it picks the
		// port when addr's is 0.
		first, err := listenUDP(addr, false)
		if err != nil {
			return listener{}, listenError(addr, err)
		}
		bound := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", bound)
		if err != nil {
			first.Close()
			if port == "0" && try < 20 {
				continue // the TCP side of that ephemeral port is taken; try another
			}
			return listener{}, listenError(addr, err)
		}
		l := listener{tcp: ln.(*net.TCPListener)}
		if !reusePortSupported || n < 2 {
			l.udp = []*udpConn{first}
		} else {
			first.Close()
			for range n {
				u, err := listenUDP(bound, true)
				if err != nil {
					l.close()
					return listener{}, listenError(addr, err)
				}
				l.udp = append(l.udp, u)
			}
		}
		return l, nil
	}
}

func (l listener) close() error {
	var errs []error
	for _, u := range l.udp {
		errs = append(errs, ignoreClosed(u.Close()))
	}
	if l.tcp != nil {
		errs = append(errs, ignoreClosed(l.tcp.Close()))
	}
	return errors.Join(errs...)
}

// udpWaitInKernel says whether the readers of the UDP sockets opened from now on wait
// for datagrams in the kernel rather than in the runtime's poller: on Linux with two Ps
// or more (udpconn_linux.go says why); elsewhere the poller always. Tests try both.
var udpWaitInKernel = func() bool { return runtime.GOMAXPROCS(0) >= 2 }

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("resolver: listen %s: address already in use (another DNS server? change resolver.listen)", addr)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("resolver: listen %s: permission denied (port 53 needs CAP_NET_BIND_SERVICE)", addr)
	}
	return fmt.Errorf("resolver: listen %s: %w", addr, err)
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
