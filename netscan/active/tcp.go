package active

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"

	"github.com/patchgate/patchgate/netscan"
)

// connect opens a TCP connection to port and closes it at once, sending no
// data. It reports whether the port is open and whether the host answered
// at all (open, or refused with a reset).
func (sc *scan) connect(ctx context.Context, h *host, port uint16) (open, alive bool) {
	// SYN and the handshake's ACK now, FIN and the last ACK at close.
	if err := sc.charge(ctx, h, ProbeTCP, 2); err != nil {
		return false, false
	}
	d := net.Dialer{Timeout: sc.cfg.Timeout}
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(h.addr, port).String())
	if err != nil {
		return false, errors.Is(err, syscall.ECONNREFUSED)
	}
	sc.charge(context.WithoutCancel(ctx), h, ProbeTCP, 2)
	c.Close()
	return true, true
}

// ping reports whether a host off the interface's subnets is alive.
func (sc *scan) ping(ctx context.Context, h *host) bool {
	for _, p := range sc.cfg.PingPorts {
		if _, alive := sc.connect(ctx, h, p); alive {
			return true
		}
	}
	return false
}

// probeTCP connects to each configured port in turn (deny-listed ports
// included: connect and close only) and records the open ones.
func (sc *scan) probeTCP(ctx context.Context, h *host) {
	ports := slices.Clone(sc.cfg.Ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	o := sc.obs(netscan.SourceTCP, h)
	for _, p := range ports {
		if ctx.Err() != nil {
			return
		}
		if open, _ := sc.connect(ctx, h, p); open {
			h.open = append(h.open, p)
			o.Add(netscan.KeyTCPOpen, strconv.Itoa(int(p)))
		}
	}
	if len(o.Facts) > 0 {
		sc.send(o)
	}
}

func (h *host) isOpen(port uint16) bool { return slices.Contains(h.open, port) }
