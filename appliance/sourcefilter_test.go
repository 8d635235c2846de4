package appliance

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

func TestAllowedSources(t *testing.T) {
	cfg := config.Default()
	if _, ok := allowedSources(cfg.SegmentTable(), "admin"); ok {
		t.Fatal("filtering with no segments configured")
	}
	cfg.Segments = []segment.Segment{
		{Name: "management", Clients: []conf.Prefix{conf.MustPrefix("10.10.0.0/24")}, Services: []string{"admin"}},
		{Name: "devices", Clients: []conf.Prefix{conf.MustPrefix("10.30.0.0/24")}},
	}
	tests := []struct {
		name, listener, addr string
		want                 bool
	}{
		{"admin from management", "admin", "10.10.0.5", true},
		{"admin from devices", "admin", "10.30.0.9", false},
		{"admin from loopback", "admin", "127.0.0.1", true},
		{"distribution from devices", "distribution", "10.30.0.9", true},
		{"distribution from management (admin only)", "distribution", "10.10.0.5", false},
		{"distribution from elsewhere", "distribution", "192.0.2.1", false},
		{"mapped v4", "distribution", "::ffff:10.30.0.9", true},
		{"admin from v6 loopback", "admin", "::1", true},
		{"unknown listener from devices", "other", "10.30.0.9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, ok := allowedSources(cfg.SegmentTable(), tt.listener)
			if !ok {
				t.Fatal("no filter with segments configured")
			}
			f := &sourceFilter{allow: allow}
			addr := net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 1234))
			if got := f.allowed(addr); got != tt.want {
				t.Errorf("allowed(%s) on %s = %v, want %v", tt.addr, tt.listener, got, tt.want)
			}
		})
	}
}

// A refused connection is closed and counted; the next allowed one is accepted.
func TestSourceFilterAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "x_refused_total", Help: "x"})
	// Only 127.0.0.2 may connect.
	only := netip.MustParseAddr("127.0.0.2")
	f := &sourceFilter{Listener: ln, allow: func(a netip.Addr) bool { return a == only }, refused: refused, log: discardLogger()}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := f.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	bad, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if n, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatalf("refused connection read %d bytes, want it closed", n)
	}
	good, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	c := <-accepted
	defer c.Close()
	if got := c.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
		t.Errorf("accepted %s, want 127.0.0.2", got)
	}
	var m dto.Metric
	if err := refused.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Errorf("refused counter = %v, want 1", n)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A segment that does not list dns gets no resolver client group, so its clients are
// refused like any unknown address.
func TestResolverOnlyForDNSSegments(t *testing.T) {
	cfg := config.Default()
	cfg.Segments = []segment.Segment{
		{Name: "management", Clients: []conf.Prefix{conf.MustPrefix("10.10.0.0/24")}, Services: []string{"admin"}},
		{Name: "devices", Clients: []conf.Prefix{conf.MustPrefix("10.30.0.0/24")}},
	}
	var names []string
	for _, g := range cfg.Resolver.Config(cfg.SegmentTable()).Segments {
		names = append(names, g.Name)
	}
	if len(names) != 1 || names[0] != "devices" {
		t.Errorf("resolver client groups = %v, want [devices]", names)
	}
}
