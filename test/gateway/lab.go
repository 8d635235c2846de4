// Package gateway is the gateway's end-to-end lab: a device namespace routed through
// an appliance namespace to an "internet" namespace, all created by the test and
// removed when it ends. The device segment is a test/netlab lab (a bridge namespace,
// two devices and the appliance on it); the internet namespace hangs off the
// appliance's second interface and holds the update server, another server, an
// upstream repository and a resolver, each an address of its own. Nothing is added
// to the test's own namespace.
//
//	device  10.30.0.10 ─┐
//	device2 10.30.0.11 ─┴ br ── 10.30.0.1 appliance 203.0.113.1 ── internet
//	                                                         .10 update (HTTP on 80 and 443, SSH-ish 22, DNS)
//	                                                         .20 other (HTTP)
//	                                                         .30 repository (HTTP)
//	                                                         .53 resolver (DNS)
//
// Test code enters a namespace with InNS (a locked OS thread that joined it: the
// sockets created there stay in that namespace) and programs nftables in the
// appliance's namespace through a file handle on it (ApplianceFD), so the test
// process itself never leaves its own namespace.
package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/test/netlab"
)

// The lab's addresses.
var (
	DeviceSubnet = netip.MustParsePrefix("10.30.0.0/24")
	ApplianceLAN = netip.MustParseAddr("10.30.0.1")
	DeviceAddr   = netip.MustParseAddr("10.30.0.10")
	Device2Addr  = netip.MustParseAddr("10.30.0.11")
	ApplianceWAN = netip.MustParseAddr("203.0.113.1")
	UpdateAddr   = netip.MustParseAddr("203.0.113.10")
	OtherAddr    = netip.MustParseAddr("203.0.113.20")
	RepoAddr     = netip.MustParseAddr("203.0.113.30")
	ResolverAddr = netip.MustParseAddr("203.0.113.53")
)

// labSegments is the lab's device segment as the appliance's config declares it:
// DeviceSubnet behind the appliance's eth0 at ApplianceLAN.
const labSegments = `segments:
  - name: devices
    interface: eth0
    addresses: [10.30.0.1/24]
    clients: [10.30.0.0/24]`

// UpdateName is what the internet's resolver answers with UpdateAddr.
const UpdateName = "updates.example."

// Lab is a built lab.
type Lab struct {
	Appliance   *netlab.Host
	Device      *netlab.Host
	Device2     *netlab.Host // a second device of the same segment
	InternetNS  string
	ApplianceFD int // a file descriptor of the appliance's namespace
}

// New builds the lab, or skips the test when it cannot (not root, no ip or nft).
func New(t testing.TB) *Lab {
	t.Helper()
	netlab.Require(t, "nft")
	nl := netlab.New(t, DeviceSubnet)
	l := &Lab{
		Appliance: nl.AddHost("appliance", netlab.HostConfig{Addr: ApplianceLAN}),
		Device:    nl.AddHost("device", netlab.HostConfig{Addr: DeviceAddr}),
		Device2:   nl.AddHost("device2", netlab.HostConfig{Addr: Device2Addr}),
	}
	b := make([]byte, 4)
	rand.Read(b)
	l.InternetNS = "pg-" + hex.EncodeToString(b) + "-inet"
	ip(t, "netns", "add", l.InternetNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.InternetNS).Run() })
	app, inet := l.Appliance.NS, l.InternetNS
	ip(t, "-n", inet, "link", "set", "lo", "up")
	ip(t, "-n", app, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", inet)
	ip(t, "-n", app, "addr", "add", ApplianceWAN.String()+"/24", "dev", "wan0")
	ip(t, "-n", app, "link", "set", "wan0", "up")
	for _, a := range []netip.Addr{UpdateAddr, OtherAddr, RepoAddr, ResolverAddr} {
		ip(t, "-n", inet, "addr", "add", a.String()+"/24", "dev", "eth0")
	}
	ip(t, "-n", inet, "link", "set", "eth0", "up")
	ip(t, "-n", inet, "route", "add", DeviceSubnet.String(), "via", ApplianceWAN.String())
	ip(t, "-n", l.Device.NS, "route", "add", "default", "via", ApplianceLAN.String())
	ip(t, "-n", l.Device2.NS, "route", "add", "default", "via", ApplianceLAN.String())
	// The appliance routes: forwarding on in its namespace only.
	if out, err := exec.Command("ip", "netns", "exec", app, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("enable forwarding in the appliance namespace: %v\n%s", err, out)
	}
	f, err := os.Open("/run/netns/" + app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l.ApplianceFD = int(f.Fd())
	return l
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// InNS runs f on an OS thread that has joined network namespace ns. The goroutine
// never unlocks its thread, so the Go runtime discards the thread afterwards instead
// of handing a thread in another namespace to other goroutines.
func InNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer fd.Close()
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// StartServers starts the internet's servers: HTTP on port 80 of UpdateAddr, OtherAddr
// and RepoAddr (each answering its own name), and on ports 443 and 22 of UpdateAddr
// (plain HTTP: only the port matters to the gateway), and DNS on ResolverAddr and
// UpdateAddr answering UpdateName with UpdateAddr (TTL ttl) and NXDOMAIN otherwise.
func (l *Lab) StartServers(t testing.TB, ttl uint32) {
	t.Helper()
	for name, ap := range map[string]netip.AddrPort{
		"update":     netip.AddrPortFrom(UpdateAddr, 80),
		"update-443": netip.AddrPortFrom(UpdateAddr, 443),
		"update-22":  netip.AddrPortFrom(UpdateAddr, 22),
		"other":      netip.AddrPortFrom(OtherAddr, 80),
		"repository": netip.AddrPortFrom(RepoAddr, 80),
	} {
		var ln net.Listener
		if err := InNS(l.InternetNS, func() (err error) {
			ln, err = net.Listen("tcp", ap.String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	for _, a := range []netip.Addr{ResolverAddr, UpdateAddr} {
		l.ServeDNS(t, l.InternetNS, netip.AddrPortFrom(a, 53), func(q dns.Question, _ netip.Addr) ([]netip.Addr, uint32) {
			if q.Name == UpdateName && q.Qtype == dns.TypeA {
				return []netip.Addr{UpdateAddr}, ttl
			}
			return nil, 0
		})
	}
}

// ServeDNS serves DNS over UDP and TCP at ap inside ns: answer gives a question's
// addresses and TTL (given the client's address); no addresses is NXDOMAIN.
func (l *Lab) ServeDNS(t testing.TB, ns string, ap netip.AddrPort, answer func(q dns.Question, client netip.Addr) ([]netip.Addr, uint32)) {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	if err := InNS(ns, func() (err error) {
		if pc, err = net.ListenPacket("udp", ap.String()); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", ap.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 {
			var client netip.Addr
			if a, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
				client = a.Addr().Unmap()
			}
			addrs, ttl := answer(r.Question[0], client)
			if len(addrs) == 0 {
				m.Rcode = dns.RcodeNameError
			}
			for _, a := range addrs {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
					A:   a.AsSlice(),
				})
			}
		}
		w.WriteMsg(m)
	})
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
}

// Nft runs Debian's nft in the appliance's namespace.
func (l *Lab) Nft(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.Appliance.NS, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
