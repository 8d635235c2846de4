package active

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/netscan"
)

// arpRounds is how many requests an address gets at most (one retry).
const arpRounds = 2

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpSweep asks for every target's MAC with ARP requests on ifc (a raw
// AF_PACKET socket) and returns those that answered.
func (sc *scan) arpSweep(ctx context.Context, ifc *net.Interface, srcs []netip.Prefix, targets []netip.Addr) (map[netip.Addr]netscan.MAC, error) {
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("active: arp sweep %s: no Ethernet address", ifc.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, fmt.Errorf("active: arp sweep %s: socket: %w", ifc.Name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("active: arp sweep %s: bind: %w", ifc.Name, err)
	}
	f := os.NewFile(uintptr(fd), "arp:"+ifc.Name)
	defer f.Close()

	want := make(map[netip.Addr]bool, len(targets))
	for _, a := range targets {
		want[a] = true
	}
	var mu sync.Mutex
	found := map[netip.Addr]netscan.MAC{}
	allFound := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1600)
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := f.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return
			}
			addr, mac, ok := parseARPReply(buf[:n])
			if !ok || !want[addr] {
				continue
			}
			mu.Lock()
			if _, dup := found[addr]; !dup {
				found[addr] = mac
				if len(found) == len(want) {
					close(allFound)
				}
			}
			mu.Unlock()
		}
	})
	defer func() { close(stop); wg.Wait() }()

	var src netscan.MAC
	copy(src[:], ifc.HardwareAddr)
	frame := make([]byte, 60) // the Ethernet minimum, padded with zeros
	for round := 0; round < arpRounds; round++ {
		sent := 0
		for _, a := range targets {
			mu.Lock()
			_, ok := found[a]
			mu.Unlock()
			if ok {
				continue
			}
			spa, ok := sourceFor(srcs, a)
			if !ok {
				continue
			}
			if err := sc.charge(ctx, nil, ProbeARP, 1); err != nil {
				return nil, err
			}
			buildARPRequest(frame, src, spa, a)
			if _, err := f.Write(frame); err != nil {
				return nil, fmt.Errorf("active: arp sweep %s: send: %w", ifc.Name, err)
			}
			sent++
		}
		if sent == 0 {
			break
		}
		t := time.NewTimer(sc.cfg.ARPWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-allFound:
			t.Stop()
		case <-t.C:
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := make(map[netip.Addr]netscan.MAC, len(found))
	for a, m := range found {
		out[a] = m
	}
	return out, nil
}

func sourceFor(srcs []netip.Prefix, a netip.Addr) (netip.Addr, bool) {
	for _, p := range srcs {
		if p.Contains(a) {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// buildARPRequest fills frame (60 bytes) with an ordinary broadcast ARP
// request: who has tpa, tell spa.
func buildARPRequest(frame []byte, sha netscan.MAC, spa, tpa netip.Addr) {
	clear(frame)
	copy(frame[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:12], sha[:])
	binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(frame[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(frame[16:], 0x0800) // IPv4
	frame[18], frame[19] = 6, 4
	binary.BigEndian.PutUint16(frame[20:], 1) // request
	copy(frame[22:28], sha[:])
	s4, t4 := spa.As4(), tpa.As4()
	copy(frame[28:32], s4[:])
	// target hardware address stays zero
	copy(frame[38:42], t4[:])
}

// parseARPReply reads an ARP reply frame's sender.
func parseARPReply(b []byte) (netip.Addr, netscan.MAC, bool) {
	if len(b) < 42 || binary.BigEndian.Uint16(b[12:]) != unix.ETH_P_ARP ||
		binary.BigEndian.Uint16(b[14:]) != 1 || binary.BigEndian.Uint16(b[16:]) != 0x0800 ||
		b[18] != 6 || b[19] != 4 || binary.BigEndian.Uint16(b[20:]) != 2 {
		return netip.Addr{}, netscan.MAC{}, false
	}
	mac := netscan.MACFrom(b[22:28])
	if !mac.Unicast() {
		return netip.Addr{}, netscan.MAC{}, false
	}
	return netip.AddrFrom4([4]byte(b[28:32])), mac, true
}
