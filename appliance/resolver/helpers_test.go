package resolver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/conf"
)

// fakeUpstream is a real miekg/dns server on loopback standing in for the site's
// upstream resolver: it answers from a zone map and records what it was asked.
type fakeUpstream struct {
	t    *testing.T
	addr string // the same port on UDP and TCP (or TLS)

	mu        sync.Mutex
	zone      map[string][]dns.RR // by lower-case fqdn + "/" + type
	nxdomain  map[string]bool
	truncUDP  map[string]bool // answer over UDP with TC and no records
	rcode     int             // when set, every answer has this rcode
	silent    bool            // read queries, never answer
	asked     []dns.Question  // as received, case preserved
	ids       []uint16
	nets      []string
	extraJunk []dns.RR                    // appended to every answer (out-of-chain records)
	canned    map[string]func(m *dns.Msg) // by lower-case fqdn: makes the whole answer
	accepted  atomic.Int32                // TCP and TLS connections accepted
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{t: t, zone: map[string][]dns.RR{}, nxdomain: map[string]bool{}, truncUDP: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		pc.Close()
		t.Skipf("TCP port %d taken: %v", port, err)
	}
	f.addr = pc.LocalAddr().String()
	f.start(&dns.Server{PacketConn: pc, Handler: f.handler("udp")})
	f.start(&dns.Server{Listener: countingListener{ln, &f.accepted}, Handler: f.handler("tcp")})
	return f
}

// newFakeTLSUpstream serves DNS-over-TLS with a fresh self-signed certificate for
// upstream.test; it returns the upstream and the CA file to trust.
func newFakeTLSUpstream(t *testing.T) (*fakeUpstream, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "upstream.test"},
		DNSNames: []string{"upstream.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	f := &fakeUpstream{t: t, zone: map[string][]dns.RR{}, nxdomain: map[string]bool{}, truncUDP: map[string]bool{}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.start(&dns.Server{Listener: countingListener{ln, &f.accepted}, Net: "tcp-tls", Handler: f.handler("tls")})
	return f, ca
}

func (f *fakeUpstream) start(srv *dns.Server) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		var err error
		if srv.PacketConn != nil {
			err = srv.ActivateAndServe()
		} else {
			err = srv.ActivateAndServe()
		}
		_ = err
	}()
	<-started
	f.t.Cleanup(func() { srv.Shutdown() })
}

func (f *fakeUpstream) handler(network string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(req.Question) != 1 {
			return
		}
		q := req.Question[0]
		if q.Name == "." { // a health check: answer it, do not count it
			if !f.silent && f.rcode == 0 {
				m := new(dns.Msg)
				m.SetReply(req)
				w.WriteMsg(m)
			} else if f.rcode != 0 {
				m := new(dns.Msg)
				m.SetRcode(req, f.rcode)
				w.WriteMsg(m)
			}
			return
		}
		f.asked = append(f.asked, q)
		f.ids = append(f.ids, req.Id)
		f.nets = append(f.nets, network)
		if f.silent {
			return
		}
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		key := strings.ToLower(q.Name)
		switch {
		case f.rcode != 0:
			m.Rcode = f.rcode
		case f.canned[key] != nil:
			f.canned[key](m)
		case network == "udp" && f.truncUDP[key]:
			m.Truncated = true
		case f.nxdomain[key]:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{mustRR(f.t, "example. 900 IN SOA ns.example. host.example. 1 3600 600 86400 30")}
		default:
			name := key
			for range 8 { // follow CNAMEs within the zone, as a recursive resolver does
				if rrs := f.zone[name+"/CNAME"]; len(rrs) > 0 && q.Qtype != dns.TypeCNAME {
					m.Answer = append(m.Answer, rrs...)
					name = strings.ToLower(rrs[0].(*dns.CNAME).Target)
					continue
				}
				m.Answer = append(m.Answer, f.zone[name+"/"+dns.TypeToString[q.Qtype]]...)
				break
			}
			if len(m.Answer) == 0 {
				m.Ns = []dns.RR{mustRR(f.t, "example. 900 IN SOA ns.example. host.example. 1 3600 600 86400 30")}
			}
			m.Answer = append(m.Answer, f.extraJunk...)
		}
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), opt.Do())
			size = int(opt.UDPSize())
		}
		if network == "udp" {
			m.Truncate(size)
		}
		w.WriteMsg(m)
	}
}

// add puts records (zone file lines) into the fake's zone.
func (f *fakeUpstream) add(lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range lines {
		rr := mustRR(f.t, l)
		k := strings.ToLower(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype]
		f.zone[k] = append(f.zone[k], rr)
	}
}

func (f *fakeUpstream) set(fn func(f *fakeUpstream)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// count is how many queries the fake received.
func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

func (f *fakeUpstream) questions() ([]dns.Question, []uint16, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dns.Question(nil), f.asked...), append([]uint16(nil), f.ids...), append([]string(nil), f.nets...)
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return rr
}

func itoa(i int) string { return strings.TrimSpace(big.NewInt(int64(i)).String()) }

// Client addresses on loopback for the test segments.
var (
	clinicalClient = netip.MustParseAddr("127.0.0.1")
	devicesClient  = netip.MustParseAddr("127.0.0.3")
	strictClient   = netip.MustParseAddr("127.0.0.4")
	sinkClient     = netip.MustParseAddr("127.0.0.5")
	refuseClient   = netip.MustParseAddr("127.0.0.6")
	nodataClient   = netip.MustParseAddr("127.0.0.7")
	strangerClient = netip.MustParseAddr("127.0.0.9") // in no segment
)

// baseConfig is a resolver on a loopback port with one segment per blocked-answer mode.
func baseConfig(upstreams ...string) Config {
	cfg := Config{
		Listen:          []string{"127.0.0.1:0"},
		UpstreamTimeout: 500 * time.Millisecond,
		HealthInterval:  time.Hour,
		ReloadInterval:  5 * time.Second,
		LocalTTL:        60 * time.Second,
		BlockPublicDoH:  true,
		Lists: []List{
			{Name: "updates", Names: []string{"update.vendor.example", "*.cdn.vendor.example", "dl.vendor.example", "*.quad9.net"}},
			{Name: "cache", Names: []string{"repo.vendor.example", "*.mirror.vendor.example"}},
			{Name: "printers", Names: []string{"fw.printer.example"}},
			{Name: "extra-block", Names: []string{"bad.cdn.vendor.example"}},
		},
		Table: testTable(map[string]string{"clinical": "127.0.0.1/32", "devices": "127.0.0.3/32", "strict": "127.0.0.4/32",
			"sinkhole": "127.0.0.5/32", "refuse": "127.0.0.6/32", "nodata": "127.0.0.7/32"}),
		Segments: []Segment{
			{Name: "clinical", Allow: []string{"updates"}, Rewrite: []string{"cache"}, Block: []string{"extra-block"},
				RewriteTo: []netip.Addr{netip.MustParseAddr("10.20.0.1"), netip.MustParseAddr("fd00:20::1")}},
			{Name: "devices", Allow: []string{"printers"}, Rewrite: []string{"cache"},
				RewriteTo: []netip.Addr{netip.MustParseAddr("10.30.0.1")}}, // no IPv6: AAAA is NODATA
			{Name: "strict", Allow: []string{"updates"}, StrictCNAME: true, CNAMETargets: []string{"*.akamai.test"}},
			{Name: "sinkhole", Allow: []string{"updates"}, BlockedAnswer: AnswerSinkhole,
				Sinkhole: []netip.Addr{netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::")}},
			{Name: "refuse", Allow: []string{"updates"}, BlockedAnswer: AnswerRefused},
			{Name: "nodata", Allow: []string{"updates"}, BlockedAnswer: AnswerNoData},
		},
		Cache:    CacheConfig{Size: 1000, MinTTL: 0, MaxTTL: time.Hour, NegativeTTL: 5 * time.Minute, PrefetchMinHits: 1},
		Limits:   Limits{MaxConcurrent: 64, UDPBufferSize: 1232, TCPIdleTimeout: 2 * time.Second, TCPMaxQueries: 100, TCPMaxConnections: 16},
		QueryLog: QueryLogConfig{Ring: 100, Log: "all", LogRate: 100, EventWindow: time.Minute},
	}
	for _, u := range upstreams {
		cfg.Upstreams = append(cfg.Upstreams, Upstream{Address: u, Protocol: "udp"})
	}
	return cfg
}

// testTable is a segment table of one client prefix a segment, by segment name.
func testTable(clients map[string]string) *segment.Table {
	var segs segment.Section
	for _, name := range slices.Sorted(maps.Keys(clients)) {
		segs = append(segs, segment.Segment{Name: name, Clients: []conf.Prefix{conf.MustPrefix(clients[name])}})
	}
	return segment.NewTable(segs)
}

// addClients adds prefixes to the client subnets of the segment called name in
// cfg.Table, adding the segment when the table has none of that name.
func addClients(cfg *Config, name string, prefixes ...string) {
	segs := slices.Clone(cfg.Table.All())
	i := slices.IndexFunc(segs, func(s segment.Segment) bool { return s.Name == name })
	if i < 0 {
		segs, i = append(segs, segment.Segment{Name: name}), len(segs)
	}
	segs[i].Clients = slices.Clone(segs[i].Clients)
	for _, p := range prefixes {
		segs[i].Clients = append(segs[i].Clients, conf.MustPrefix(p))
	}
	cfg.Table = segment.NewTable(segs)
}

var testEpoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// testServer is a running resolver on loopback with a fake clock.
type testServer struct {
	*Server
	clock *clock.Fake
	reg   *prometheus.Registry
	addr  string
}

func startServer(t *testing.T, cfg Config, opts Options) *testServer {
	t.Helper()
	return startServerReaders(t, cfg, opts, 0)
}

// startServerReaders is startServer with readers UDP readers (and sockets) per listen
// address; 0 is the default.
func startServerReaders(t *testing.T, cfg Config, opts Options, readers int) *testServer {
	t.Helper()
	fc := clock.NewFake(testEpoch)
	reg := prometheus.NewRegistry()
	opts.Clock, opts.Registerer = fc, reg
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if readers > 0 {
		s.udpReaders = readers
	}
	listenAndRun(t, s)
	clocktest.WaitFor(t, "resolver ready", s.Ready)
	// The housekeeping goroutine has armed its three tickers once Waiters says so.
	clocktest.WaitFor(t, "tickers armed", func() bool { return fc.Waiters() >= 3 })
	return &testServer{Server: s, clock: fc, reg: reg, addr: s.Addrs()[0]}
}

// listenAndRun binds s's sockets and runs it until the test ends.
func listenAndRun(tb testing.TB, s *Server) {
	tb.Helper()
	if err := s.Listen(); err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	clocktest.Run(tb, s.Run)
}

// query is one dig-style question to the resolver under test.
type query struct {
	from  netip.Addr // source address on loopback; zero means 127.0.0.1
	name  string
	qtype uint16
	tcp   bool
	edns  uint16 // 0: no EDNS
	id    uint16
}

func (ts *testServer) ask(t *testing.T, q query) *dns.Msg {
	t.Helper()
	r, err := ts.try(q)
	if err != nil {
		t.Fatalf("query %s %s from %s: %v", q.name, dns.TypeToString[q.qtype], q.from, err)
	}
	return r
}

func (ts *testServer) try(q query) (*dns.Msg, error) {
	if !q.from.IsValid() {
		q.from = clinicalClient
	}
	if q.qtype == 0 {
		q.qtype = dns.TypeA
	}
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	m.Id = q.id
	if m.Id == 0 {
		m.Id = dns.Id()
	}
	if q.edns > 0 {
		m.SetEdns0(q.edns, false)
	}
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: q.from.AsSlice()}}}
	if q.tcp {
		c.Net = "tcp"
		c.Dialer.LocalAddr = &net.TCPAddr{IP: q.from.AsSlice()}
	}
	r, _, err := c.Exchange(m, ts.addr)
	return r, err
}

// answers renders a message's answer section as "name TYPE data" lines.
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
	}
	return out
}

// recorder is an AnswerSink, EventSink and AssetNamer for tests.
type recorder struct {
	mu      sync.Mutex
	learned []string
	bursts  []BlockedBurst
}

func (r *recorder) Learned(segment string, _ netip.Addr, name string, addrs []netip.Addr, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []string
	for _, a := range addrs {
		as = append(as, a.String())
	}
	r.learned = append(r.learned, segment+" "+name+" "+strings.Join(as, ",")+" "+ttl.String())
}

func (r *recorder) Blocked(b BlockedBurst) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bursts = append(r.bursts, b)
}

func (r *recorder) NameOf(a netip.Addr) string {
	if a == clinicalClient {
		return "printer-3"
	}
	return ""
}

func (r *recorder) got() ([]string, []BlockedBurst) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.learned...), append([]BlockedBurst(nil), r.bursts...)
}

// checkLearned checks that the answer sink was told exactly want, in order.
func (r *recorder) checkLearned(t *testing.T, want ...string) {
	t.Helper()
	learned, _ := r.got()
	if diff := cmp.Diff(want, learned); diff != "" {
		t.Errorf("Learned calls (-want +got):\n%s", diff)
	}
}

// metricValue reads a counter or gauge (the client library's testutil needs a module
// this one does not have).
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	go func() { c.Collect(ch); close(ch) }()
	var v float64
	for m := range ch {
		var d dto.Metric
		m.Write(&d)
		switch {
		case d.Counter != nil:
			v += d.Counter.GetValue()
		case d.Gauge != nil:
			v += d.Gauge.GetValue()
		}
	}
	return v
}

// metricCount is the number of series c has.
func metricCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
