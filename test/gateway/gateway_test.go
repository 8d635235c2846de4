package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/config"
	gw "github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/test/netlab"
)

// labConfig is the appliance's config: the device segment routed, the repository and
// the resolver in the internet as egress, no grace (entries live exactly the TTL).
const labConfig = `
state:
  dir: /tmp/unused
` + labSegments + `
resolver:
  upstreams: [{address: "203.0.113.53:53", protocol: udp}]
gateway:
  enabled: true
  segments: [devices]
  grace: 0s
  log_rate: 50
  egress:
    repositories: [203.0.113.30]
`

// names is the inventory as the gateway sees it.
type names map[netip.Addr]string

func (n names) NameOf(a netip.Addr) string { return n[a] }

// startGateway runs the gateway on labConfig in the appliance namespace.
func startGateway(t *testing.T, l *Lab, logs io.Writer) *gw.Gateway {
	t.Helper()
	cfg, err := config.Parse("lab.yaml", []byte(labConfig))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gw.PolicyFrom(cfg.Gateway, cfg.GatewayRefs())
	if err != nil {
		t.Fatal(err)
	}
	g, err := gw.New(p, gw.Options{
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Registry: prometheus.NewRegistry(),
		Names:    names{DeviceAddr: "robot-1"},
		NetNS:    l.ApplianceFD,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() }) // after Run stopped: cleanups run last first
	clocktest.Run(t, g.Run)
	deadline := time.Now().Add(10 * time.Second)
	for !g.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", g.Health())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

// serveSegmentDNS is the appliance's DNS for the device segment, a stand-in for
// appliance/resolver: it forwards UpdateName to the internet's resolver over a socket
// of the appliance's namespace (the appliance's own egress), hands the answer to the
// gateway's Learned, and only then answers the device. Every other name: NXDOMAIN.
func serveSegmentDNS(t *testing.T, l *Lab, g *gw.Gateway) {
	t.Helper()
	var up net.Conn
	if err := InNS(l.Appliance.NS, func() (err error) {
		up, err = net.Dial("udp", netip.AddrPortFrom(ResolverAddr, 53).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	var mu sync.Mutex
	l.ServeDNS(t, l.Appliance.NS, netip.AddrPortFrom(ApplianceLAN, 53), func(q dns.Question, client netip.Addr) ([]netip.Addr, uint32) {
		if q.Name != UpdateName || q.Qtype != dns.TypeA {
			return nil, 0
		}
		mu.Lock()
		defer mu.Unlock()
		co := &dns.Conn{Conn: up}
		m := new(dns.Msg)
		m.SetQuestion(q.Name, q.Qtype)
		up.SetDeadline(time.Now().Add(2 * time.Second))
		if err := co.WriteMsg(m); err != nil {
			t.Errorf("forward to the internet's resolver: %v", err)
			return nil, 0
		}
		r, err := co.ReadMsg()
		if err != nil {
			t.Errorf("answer from the internet's resolver: %v", err)
			return nil, 0
		}
		var addrs []netip.Addr
		var ttl uint32
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				addr, _ := netip.AddrFromSlice(a.A.To4())
				addrs = append(addrs, addr)
				ttl = a.Hdr.Ttl
			}
		}
		g.Learned("devices", client, strings.TrimSuffix(q.Name, "."), addrs, time.Duration(ttl)*time.Second)
		return addrs, ttl
	})
}

// httpGet fetches http://addr/ from namespace ns with a bare HTTP/1.0 request (dialled
// on the namespace's thread) and returns the body.
func httpGet(ns string, addr netip.Addr) (string, error) {
	return httpGetPort(ns, netip.AddrPortFrom(addr, 80))
}

// httpGetPort is httpGet on another port.
func httpGetPort(ns string, ap netip.AddrPort) (string, error) {
	addr := ap.Addr()
	var body string
	err := InNS(ns, func() error {
		c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		head, rest, _ := strings.Cut(string(b), "\r\n\r\n")
		if !strings.Contains(head, " 200 ") {
			return fmt.Errorf("status %q", strings.SplitN(head, "\r\n", 2)[0])
		}
		body = rest
		return nil
	})
	return body, err
}

// lookup asks server (from namespace ns) for name's A records, over proto.
func lookup(ns string, server netip.Addr, proto, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	err := InNS(ns, func() error {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, netip.AddrPortFrom(server, 53).String())
		if err != nil {
			return err
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				addr, _ := netip.AddrFromSlice(a.A.To4())
				out = append(out, addr)
			}
		}
		return nil
	})
	return out, err
}

// TestEgressFollowsDNS walks the story through the lab.
func TestEgressFollowsDNS(t *testing.T) {
	l := New(t)
	const ttl = 2
	l.StartServers(t, ttl)
	logs := &netlab.Buffer{}
	g := startGateway(t, l, logs)
	serveSegmentDNS(t, l, g)
	dev := l.Device.NS

	// Before any lookup the update server is out of reach.
	if _, err := httpGet(dev, UpdateAddr); err == nil {
		t.Fatal("device reached the update server before resolving its name")
	}

	// The device resolves the allowlisted name through the appliance and connects at
	// once: the answer came only after the address was in the set.
	addrs, err := lookup(dev, ApplianceLAN, "udp", UpdateName)
	if err != nil || len(addrs) != 1 || addrs[0] != UpdateAddr {
		t.Fatalf("device lookup of %s via the appliance = %v, %v; want [%s]", UpdateName, addrs, err, UpdateAddr)
	}
	if body, err := httpGet(dev, UpdateAddr); err != nil || body != "update" {
		t.Fatalf("device GET %s after resolving = %q, %v; want the update server", UpdateAddr, body, err)
	}
	if out := l.Nft(t, "list", "set", "inet", "patchgate", "seg_devices_v4"); !strings.Contains(out, DeviceAddr.String()+" . "+UpdateAddr.String()) {
		t.Errorf("seg_devices_v4 lacks %s . %s:\n%s", DeviceAddr, UpdateAddr, out)
	}

	// No IP literal, no resolver but the appliance's, not even on an allowed address.
	tests := []struct {
		name string
		try  func() error
	}{
		{"other server by IP literal", func() error { _, err := httpGet(dev, OtherAddr); return err }},
		{"internet resolver over UDP", func() error { _, err := lookup(dev, ResolverAddr, "udp", UpdateName); return err }},
		{"internet resolver over TCP", func() error { _, err := lookup(dev, ResolverAddr, "tcp", UpdateName); return err }},
		{"DNS on the learned address", func() error { _, err := lookup(dev, UpdateAddr, "udp", UpdateName); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.try(); err == nil {
				t.Errorf("device: %s succeeded, want it denied", tt.name)
			}
		})
	}
	denied := l.Nft(t, "list", "counter", "inet", "patchgate", "seg_devices_denied")
	if strings.Contains(denied, "packets 0 ") {
		t.Errorf("seg_devices_denied counted nothing:\n%s", denied)
	}

	// The denied flows are logged with the device's inventory name.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "dst="+OtherAddr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no deny log line for %s:\n%s", OtherAddr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "dst="+OtherAddr.String()) && !strings.Contains(line, "device=robot-1") {
			t.Errorf("deny log line without the device's name: %s", line)
		}
	}

	// The appliance's own traffic: its repository yes, anything else no.
	if body, err := httpGet(l.Appliance.NS, RepoAddr); err != nil || body != "repository" {
		t.Errorf("appliance GET its repository %s = %q, %v; want it to pass", RepoAddr, body, err)
	}
	if _, err := httpGet(l.Appliance.NS, OtherAddr); err == nil {
		t.Errorf("appliance reached %s, which is no egress destination", OtherAddr)
	}
	if out := l.Nft(t, "list", "counter", "inet", "patchgate", "output_denied"); strings.Contains(out, "packets 0 ") {
		t.Errorf("output_denied counted nothing:\n%s", out)
	}

	// Once the TTL has passed without a new lookup, the address is gone again.
	deadline = time.Now().Add(10 * time.Second)
	for strings.Contains(l.Nft(t, "list", "set", "inet", "patchgate", "seg_devices_v4"), UpdateAddr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the set %ds after a %ds TTL", UpdateAddr, 10, ttl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := httpGet(dev, UpdateAddr); err == nil {
		t.Error("device reached the update server after the answer's TTL passed")
	}
	// A new lookup opens it again.
	if _, err := lookup(dev, ApplianceLAN, "tcp", UpdateName); err != nil {
		t.Fatalf("second lookup over TCP: %v", err)
	}
	if _, err := httpGet(dev, UpdateAddr); err != nil {
		t.Errorf("device GET after a new lookup: %v", err)
	}
}

// TestPortsAndDevices: an answer opens the allowed ports (80 and 443 by default) of its
// addresses to the device that asked, and nothing else: not port 22, and not the
// other device of the same segment until it resolves the name itself.
func TestPortsAndDevices(t *testing.T) {
	l := New(t)
	l.StartServers(t, 600)
	g := startGateway(t, l, &netlab.Buffer{})
	serveSegmentDNS(t, l, g)
	dev, dev2 := l.Device.NS, l.Device2.NS
	https, ssh := netip.AddrPortFrom(UpdateAddr, 443), netip.AddrPortFrom(UpdateAddr, 22)

	if addrs, err := lookup(dev, ApplianceLAN, "udp", UpdateName); err != nil || len(addrs) != 1 {
		t.Fatalf("device lookup of %s = %v, %v", UpdateName, addrs, err)
	}
	tests := []struct {
		name   string
		ns     string
		ap     netip.AddrPort
		wantOK bool
	}{
		{"the device that asked, on 443", dev, https, true},
		{"the device that asked, on 80", dev, netip.AddrPortFrom(UpdateAddr, 80), true},
		{"the device that asked, on 22", dev, ssh, false},
		{"another device of the segment, on 443", dev2, https, false},
		{"another device of the segment, on 80", dev2, netip.AddrPortFrom(UpdateAddr, 80), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := httpGetPort(tt.ns, tt.ap)
			if (err == nil) != tt.wantOK {
				t.Errorf("GET %s: err %v, want it to pass: %v", tt.ap, err, tt.wantOK)
			}
		})
	}

	// Once the second device resolves the name itself, it may connect too.
	if addrs, err := lookup(dev2, ApplianceLAN, "tcp", UpdateName); err != nil || len(addrs) != 1 {
		t.Fatalf("device2 lookup of %s = %v, %v", UpdateName, addrs, err)
	}
	if body, err := httpGetPort(dev2, https); err != nil || body != "update-443" {
		t.Errorf("device2 GET %s after resolving = %q, %v; want the update server", https, body, err)
	}
	if _, err := httpGetPort(dev2, ssh); err == nil {
		t.Errorf("device2 reached %s, a port the list does not name", ssh)
	}
}
