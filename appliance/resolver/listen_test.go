package resolver

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestListenOneSocketPerReader(t *testing.T) {
	l, err := listenBoth("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.close() })
	want := 1
	if reusePortSupported {
		want = 3
	}
	if len(l.udp) != want {
		t.Fatalf("listenBoth(_, 3) opened %d UDP sockets, want %d", len(l.udp), want)
	}
	port := l.udp[0].LocalAddr().(*net.UDPAddr).Port
	for i, u := range l.udp {
		if got := u.LocalAddr().(*net.UDPAddr).Port; got != port {
			t.Errorf("socket %d bound to port %d, want %d like the first", i, got, port)
		}
	}
	if got := l.tcp.Addr().(*net.TCPAddr).Port; got != port {
		t.Errorf("TCP on port %d, want %d", got, port)
	}
}

// TestListenRefusesPortHeldWithReusePort: a socket of another program that set
// SO_REUSEPORT on the port must make Listen fail, not quietly share the port with it.
func TestListenRefusesPortHeldWithReusePort(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT sockets on this platform")
	}
	lc := net.ListenConfig{Control: setReusePort}
	other, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	cfg := baseConfig("127.0.0.1:9")
	cfg.Listen = []string{other.LocalAddr().String()}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Listen()
	if err == nil {
		s.Close()
		t.Fatalf("Listen(%s) held by another SO_REUSEPORT socket succeeded, want an error", cfg.Listen[0])
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Listen error = %v, want address already in use", err)
	}
}

// TestUDPBurstsAllAnswered sends a burst of queries without waiting, so that readers
// take several per read, from IPv4 and IPv6 clients, to one reader and to three (three
// sockets sharing the port), and requires one right answer for each.
func TestUDPBurstsAllAnswered(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	tests := []struct {
		name    string
		listen  string
		client  string
		readers int
	}{
		{"IPv4", "127.0.0.1:0", "127.0.0.1", 1},
		{"IPv4, three readers", "127.0.0.1:0", "127.0.0.1", 3},
		{"IPv6", "[::1]:0", "::1", 1},
		{"IPv6, three readers", "[::1]:0", "::1", 3},
		{"IPv4 client of a dual-stack socket", "[::]:0", "127.0.0.1", 2},
	}
	for _, wait := range readerWaits {
		for _, tc := range tests {
			t.Run(wait.name+"/"+tc.name, func(t *testing.T) {
				setReaderWait(t, wait.inKernel)
				udpBurst(t, up, tc.listen, tc.client, tc.readers)
			})
		}
	}
}

// readerWaits are the two ways a UDP reader can wait for datagrams (udpWaitInKernel):
// in the kernel and in the runtime's poller.
var readerWaits = []struct {
	name     string
	inKernel bool
}{{"kernel", true}, {"poller", false}}

func setReaderWait(t *testing.T, inKernel bool) {
	old := udpWaitInKernel
	udpWaitInKernel = func() bool { return inKernel }
	t.Cleanup(func() { udpWaitInKernel = old })
}

func udpBurst(t *testing.T, up *fakeUpstream, listen, client string, readers int) {
	probe, err := net.ListenPacket("udp", listen)
	if err != nil {
		t.Skipf("cannot listen on %s here (no IPv6?): %v", listen, err)
	}
	probe.Close()
	cfg := baseConfig(up.addr)
	cfg.Listen = []string{listen}
	addClients(&cfg, cfg.Segments[0].Name, "::1/128")
	s := startServerReaders(t, cfg, Options{}, readers)
	_, port, _ := net.SplitHostPort(s.addr)
	// Six clients (six source ports) interleave their queries, so that a batch
	// holds datagrams of several senders, and several sockets get some.
	var clients []net.Conn
	for range 6 {
		c, err := net.Dial("udp", net.JoinHostPort(client, port))
		if err != nil {
			t.Skipf("no %s client: %v", client, err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	buf := make([]byte, 2048)
	warm := new(dns.Msg)
	warm.SetQuestion("update.vendor.example.", dns.TypeA)
	b, _ := warm.Pack()
	clients[0].Write(b)
	clients[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := clients[0].Read(buf); err != nil { // in the cache from now on
		t.Fatalf("first query: %v", err)
	}

	type want struct {
		name  string
		rcode int
		n     int // answer records
	}
	kinds := []want{
		{"update.vendor.example.", dns.RcodeSuccess, 1}, // cached
		{"repo.vendor.example.", dns.RcodeSuccess, 1},   // rewritten
		{"www.example.com.", dns.RcodeNameError, 0},     // blocked
		{"dl.vendor.example.", dns.RcodeSuccess, 2},     // forwarded
	}
	const burst = 120
	sent := make([]map[uint16]want, len(clients))
	for i := range burst {
		c := i % len(clients)
		w := kinds[i%len(kinds)]
		m := new(dns.Msg)
		m.SetQuestion(w.name, dns.TypeA)
		m.Id = uint16(1000 + i)
		if i%2 == 0 {
			m.SetEdns0(1232, false)
		}
		b, _ := m.Pack()
		if _, err := clients[c].Write(b); err != nil {
			t.Fatal(err)
		}
		if sent[c] == nil {
			sent[c] = map[uint16]want{}
		}
		sent[c][m.Id] = w
	}
	for c, conn := range clients {
		for len(sent[c]) > 0 {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %d answers missing: %v", c, len(sent[c]), err)
			}
			m := new(dns.Msg)
			if err := m.Unpack(buf[:n]); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			w, ok := sent[c][m.Id]
			if !ok {
				t.Fatalf("client %d got an answer with ID %d: not its query, or answered twice", c, m.Id)
			}
			delete(sent[c], m.Id)
			if len(m.Question) != 1 || m.Question[0].Name != w.name || m.Rcode != w.rcode || len(m.Answer) != w.n {
				t.Errorf("answer %d: %v rcode %s, %d records; want %s rcode %s, %d records",
					m.Id, m.Question, dns.RcodeToString[m.Rcode], len(m.Answer), w.name, dns.RcodeToString[w.rcode], w.n)
			}
		}
	}
}

// TestConcurrentClientsGetTheirOwnAnswers: requests and their answers' room are reused
// from query to query; under many clients at once, every answer must still be the one
// to its own question (run with -race).
func TestConcurrentClientsGetTheirOwnAnswers(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	for i := range 8 {
		up.add(fmt.Sprintf("h%d.cdn.vendor.example. 300 IN A 192.0.2.%d", i, 100+i))
	}
	ts := startServer(t, baseConfig(up.addr), Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				var q query
				var want []string
				switch i % 4 {
				case 0: // forwarded, then cached
					q = query{name: fmt.Sprintf("h%d.cdn.vendor.example.", g)}
					want = []string{fmt.Sprintf("h%d.cdn.vendor.example. A 192.0.2.%d", g, 100+g)}
				case 1:
					q = query{name: "repo.vendor.example.", qtype: dns.TypeAAAA}
					want = []string{"repo.vendor.example. AAAA fd00:20::1"}
				case 2:
					q = query{name: fmt.Sprintf("blocked%d.example.", g), edns: 1232}
				case 3:
					q = query{name: fmt.Sprintf("h%d.cdn.vendor.example.", g), tcp: true}
					want = []string{fmt.Sprintf("h%d.cdn.vendor.example. A 192.0.2.%d", g, 100+g)}
				}
				r, err := ts.try(q)
				if err != nil {
					t.Errorf("goroutine %d query %s: %v", g, q.name, err)
					return
				}
				if len(r.Question) != 1 || r.Question[0].Name != q.name {
					t.Errorf("asked %s, answer is about %v", q.name, r.Question)
				}
				if got := answers(r); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: answer %q, want %q", q.name, got, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestWaitingReadersLetTheWorldStop: the garbage collector must be able to stop the
// world while every UDP reader waits on an idle socket, in the kernel (a blocking
// recvmmsg) or in the poller, and the readers must answer afterwards; Close (the test's
// cleanup) must wake them.
func TestWaitingReadersLetTheWorldStop(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	for _, wait := range readerWaits {
		t.Run(wait.name, func(t *testing.T) {
			setReaderWait(t, wait.inKernel)
			ts := startServerReaders(t, baseConfig(up.addr), Options{}, 3)
			ts.ask(t, query{name: "repo.vendor.example."})
			time.Sleep(50 * time.Millisecond) // let every reader go back to waiting
			done := make(chan struct{})
			go func() {
				for range 3 {
					runtime.GC()
				}
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(time.Minute): // a hang guard, not a measurement
				t.Fatal("runtime.GC did not return while the UDP readers waited for datagrams")
			}
			for range 6 {
				if r := ts.ask(t, query{name: "repo.vendor.example."}); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("after GC: rcode %s, %d answers; want NOERROR and 1", dns.RcodeToString[r.Rcode], len(r.Answer))
				}
			}
		})
	}
}
