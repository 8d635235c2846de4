package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/conf"
)

// trail is an in-memory Source.
type trail struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (tr *trail) add(n int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for range n {
		seq := uint64(len(tr.recs) + 1)
		action := "rollout.approve"
		if seq%5 == 0 {
			action = "deployment.failed"
		}
		tr.recs = append(tr.recs, audit.Record{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
			Entry: audit.Entry{Actor: "anna", Action: action, Object: "rollout/" + strconv.FormatUint(seq, 10)}})
	}
}

func (tr *trail) After(_ context.Context, seq uint64, limit int) ([]audit.Record, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if seq >= uint64(len(tr.recs)) {
		return nil, nil
	}
	end := min(uint64(len(tr.recs)), seq+uint64(limit))
	return append([]audit.Record(nil), tr.recs[seq:end]...), nil
}

func (tr *trail) Last() uint64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return uint64(len(tr.recs))
}

// testCA returns httptest's loopback certificate and a PEM file of it to trust.
func testCA(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.TLS.Certificates[0], ca
}

// syslogReceiver is an RFC 5425 server on loopback that can go away and come back on
// the same address. It keeps every frame, checking the octet counts.
type syslogReceiver struct {
	t    *testing.T
	cert tls.Certificate
	addr string

	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	frames []string
	errs   []error
	wg     sync.WaitGroup
}

func newSyslogReceiver(t *testing.T, cert tls.Certificate) *syslogReceiver {
	r := &syslogReceiver{t: t, cert: cert, addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *syslogReceiver) start() {
	ln, err := tls.Listen("tcp", r.addr, &tls.Config{Certificates: []tls.Certificate{r.cert}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.ln, r.addr = ln, ln.Addr().String()
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() { r.read(c) })
		}
	})
}

// read takes "LEN SP MSG" frames until the connection ends.
func (r *syslogReceiver) read(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(n[:len(n)-1])
		if err != nil || size < 1 {
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("bad frame length %q", n))
			r.mu.Unlock()
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.mu.Lock()
		r.frames = append(r.frames, string(msg))
		r.mu.Unlock()
	}
}

func (r *syslogReceiver) stop() {
	r.mu.Lock()
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

var seqRE = regexp.MustCompile(`\[audit@32473 seq="(\d+)"`)

// seqs returns the record numbers received, in order.
func (r *syslogReceiver) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, f := range r.frames {
		m := seqRE.FindStringSubmatch(f)
		if m == nil {
			r.t.Errorf("frame without a record number: %q", f)
			continue
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		out = append(out, n)
	}
	return out
}

// jsonReceiver is an HTTPS JSON target; while down it answers 503.
type jsonReceiver struct {
	srv  *httptest.Server
	ca   string
	mu   sync.Mutex
	down bool
	msgs []Message
	auth []string
}

func newJSONReceiver(t *testing.T) *jsonReceiver {
	r := &jsonReceiver{}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var batch []Message
		if err := json.NewDecoder(req.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.msgs = append(r.msgs, batch...)
	}))
	t.Cleanup(r.srv.Close)
	r.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(r.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *jsonReceiver) setDown(d bool) {
	r.mu.Lock()
	r.down = d
	r.mu.Unlock()
}

func (r *jsonReceiver) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, m := range r.msgs {
		out = append(out, m.Seq)
	}
	return out
}

// running is a Service started on a context the test cancels (and waits for).
type running struct {
	s      *Service
	cancel func()
	done   chan struct{}
}

func start(t *testing.T, opts Options, targets ...Target) *running {
	t.Helper()
	s, err := New(opts, targets...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan struct{})}
	go func() { s.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

func options(t *testing.T, src Source, dir string) Options {
	fc := clock.NewFake(t0)
	fc.SetAutoAdvance(true)
	return Options{Dir: dir, Source: src, Rate: 1000, Batch: 7, Retry: time.Second, Poll: 50 * time.Millisecond, Clock: fc}
}

func inOrder(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func syslogTarget(t *testing.T, addr, ca string) Target {
	t.Helper()
	s, err := NewSyslogSink(Syslog{Address: addr, CAFile: ca, Facility: "local0"}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	return Target{"syslog", s}
}

func httpsTarget(t *testing.T, r *jsonReceiver) Target {
	t.Helper()
	s, err := NewHTTPSSink(HTTPS{URL: r.srv.URL + "/ingest", Token: conf.Secret("tok-1"), CAFile: r.ca}, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	return Target{"https", s}
}

func TestDelivery(t *testing.T) {
	cert, ca := testCA(t)
	for _, tc := range []struct {
		name string
		// target makes the target and returns what it received.
		target func(t *testing.T) (Target, func() []uint64)
	}{
		{"syslog over TLS", func(t *testing.T) (Target, func() []uint64) {
			r := newSyslogReceiver(t, cert)
			return syslogTarget(t, r.addr, ca), r.seqs
		}},
		{"JSON over HTTPS", func(t *testing.T) (Target, func() []uint64) {
			r := newJSONReceiver(t)
			return httpsTarget(t, r), func() []uint64 {
				r.mu.Lock()
				for _, a := range r.auth {
					if a != "Bearer tok-1" {
						t.Errorf("Authorization = %q, want the bearer token", a)
					}
				}
				r.mu.Unlock()
				return r.seqs()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &trail{}
			tr.add(30)
			target, got := tc.target(t)
			run := start(t, options(t, tr, t.TempDir()), target)
			clocktest.WaitFor(t, "30 records", func() bool { return len(got()) >= 30 })
			tr.add(5) // records written while it runs follow
			clocktest.WaitFor(t, "35 records", func() bool { return len(got()) >= 35 })
			if g := got(); !equal(g, inOrder(35)) {
				t.Errorf("received %v, want 1..35 in order, once", g)
			}
			clocktest.WaitFor(t, "backlog 0", func() bool { return run.s.Status()[0].Backlog == 0 })
			if st := run.s.Status()[0]; st.Cursor != 35 || st.Forwarded != 35 || st.Error != "" {
				t.Errorf("Status = %+v, want cursor 35, forwarded 35, no error", st)
			}
		})
	}
}

func TestBadCertificate(t *testing.T) {
	cert, _ := testCA(t)
	r := newSyslogReceiver(t, cert)
	s, err := NewSyslogSink(Syslog{Address: r.addr, Facility: "local0"}, "gw1") // system roots only
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Send(context.Background(), []audit.Record{{Seq: 1, Time: t0, Entry: audit.Entry{Actor: "a", Action: "b"}}})
	if err == nil {
		t.Fatal("Send to a server with an untrusted certificate succeeded")
	}
	if _, err := NewSyslogSink(Syslog{Address: r.addr, CAFile: filepath.Join(t.TempDir(), "none.pem")}, "gw1"); err == nil {
		t.Error("NewSyslogSink with a missing ca_file succeeded")
	}
}
