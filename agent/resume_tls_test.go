package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
)

// vpnListener slows every write of the appliance's connections down, as a VPN from a
// therapist's home does; the test cuts connections with their drop method.
type vpnListener struct {
	net.Listener
	latency time.Duration
}

func (l vpnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &vpnConn{Conn: c, latency: l.latency}, nil
}

type vpnConn struct {
	net.Conn
	latency time.Duration
}

// Write waits before sending: real time, never asserted, only a slow wire.
func (c *vpnConn) Write(p []byte) (int, error) {
	time.Sleep(c.latency)
	return c.Conn.Write(p)
}

// How a connection is cut mid-body.
const (
	dropCloseNotify = "close_notify" // the TLS connection is closed properly (alert, FIN)
	dropReset       = "reset"        // the TCP connection is reset: no TLS alert, no FIN
)

// drop cuts a hijacked connection (a *tls.Conn over a *vpnConn) the way how says.
func drop(conn net.Conn, how string) {
	if how == dropReset {
		if tc, ok := conn.(*tls.Conn); ok {
			if vc, ok := tc.NetConn().(*vpnConn); ok {
				if tcp, ok := vc.Conn.(*net.TCPConn); ok {
					tcp.SetLinger(0) // close sends RST
					tcp.Close()
					return
				}
			}
		}
	}
	conn.Close()
}

// cutWriter lets left body bytes through, then flushes them and cuts the connection.
type cutWriter struct {
	http.ResponseWriter
	left int
	how  string
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) <= w.left {
		w.left -= len(p)
		return w.ResponseWriter.Write(p)
	}
	n, _ := w.ResponseWriter.Write(p[:w.left])
	w.left = 0
	rc := http.NewResponseController(w.ResponseWriter)
	rc.Flush()
	if conn, _, err := rc.Hijack(); err == nil {
		drop(conn, w.how)
	}
	return n, errors.New("connection cut")
}

// cut is one dropped target GET: the connection dies once the file's first at bytes
// are sent; ignoreRange answers a Range request with the whole target (200).
type cut struct {
	at          int
	how         string
	ignoreRange bool
}

// rangeStart is N of "bytes=N-", 0 for no Range.
func rangeStart(t *testing.T, h string) int {
	if h == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(h, "bytes="), "-"))
	if err != nil {
		t.Fatalf("Range %q: %v", h, err)
	}
	return n
}

// TestAgentResumesOverTLSThroughDrops: a pinned HTTPS appliance requiring the
// agent's client certificate, behind a slow link, drops the download three times;
// within one round the agent resumes with Range over new TLS connections after
// back-offs of 2s, 4s, 8s ±50% on the fake clock (never sooner, never later), and
// installs bytes that verify.
func TestAgentResumesOverTLSThroughDrops(t *testing.T) {
	data := bytes.Repeat([]byte("a patch over a VPN from home. "), 10_000) // 300 KB
	tests := []struct {
		name  string
		cuts  []cut
		exact bool // the agent kept every byte sent before the cut
	}{
		{"TLS close_notify mid-body", []cut{{at: 40_000, how: dropCloseNotify}, {at: 100_003, how: dropCloseNotify}, {at: 250_000, how: dropCloseNotify}}, true},
		{"TCP reset without a TLS alert", []cut{{at: 65_536, how: dropReset}, {at: 150_000, how: dropReset}, {at: 299_999, how: dropReset}}, false},
		{"a Range the appliance ignores", []cut{{at: 120_000, how: dropCloseNotify}, {at: 60_000, how: dropCloseNotify, ignoreRange: true}, {at: 200_000, how: dropReset}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Now())
			e := newRoadEnvOn(t, data, func(l net.Listener) net.Listener { return vpnListener{Listener: l, latency: 2 * time.Millisecond} },
				func(o *agent.Options) { o.Clock = clk })
			e.app.road.requireClient = true
			e.cycle(t) // enrolled, pinned, client certificate issued
			calls := 0
			e.app.targetHook = func(w http.ResponseWriter, r *http.Request) bool {
				calls++
				if calls > len(tc.cuts) {
					return false // the last GET gets the rest
				}
				c := tc.cuts[calls-1]
				if c.ignoreRange {
					r.Header.Del("Range")
				}
				left := c.at - rangeStart(t, r.Header.Get("Range"))
				http.ServeContent(&cutWriter{ResponseWriter: w, left: left, how: c.how}, r, "", time.Time{}, bytes.NewReader(data))
				return true
			}
			e.app.setOffers(offer(71, "pkgs/tool_1.1.deb", true, true))

			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			done := make(chan error, 1)
			go func() { _, err := e.agent.Cycle(ctx); done <- err }()
			for i := range tc.cuts {
				backoff := 2 * time.Second << i
				clocktest.WaitFor(t, fmt.Sprintf("back-off %d armed", i+1), func() bool { return clk.Waiters() == 1 })
				if _, _, gets := e.app.snapshot(); len(gets) != i+1 {
					t.Fatalf("back-off %d armed after %d target GETs, want %d", i+1, len(gets), i+1)
				}
				clk.Advance(backoff/2 - time.Millisecond)
				if clk.Waiters() != 1 {
					t.Fatalf("resumed before half of the %s back-off", backoff)
				}
				clk.Advance(backoff + time.Millisecond) // 1.5 × back-off: the jitter's end
			}
			if err := clocktest.Receive(t, done, "the round to end"); err != nil {
				t.Fatalf("Cycle: %v", err)
			}

			_, outcomes, gets := e.app.snapshot()
			if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded {
				t.Fatalf("outcomes = %+v, want one success after %d drops", outcomes, len(tc.cuts))
			}
			if got := e.installs(t); len(got) != 2 || got[0] != sum(data) {
				t.Errorf("installed %v, want the verified bytes %s", got, sum(data))
			}
			if len(gets) != len(tc.cuts)+1 || gets[0] != "" {
				t.Fatalf("target GETs %q, want a fresh one and %d resumes", gets, len(tc.cuts))
			}
			for i, c := range tc.cuts {
				start := rangeStart(t, gets[i+1])
				if start <= 0 || start > c.at || (tc.exact && start != c.at) {
					t.Errorf("GET %d after a cut at byte %d asked for %q", i+2, c.at, gets[i+1])
				}
			}
			_, cns := e.app.road.snapshot()
			for i, cn := range cns {
				if cn != "ag-1" {
					t.Errorf("authenticated request %d presented client certificate %q, want ag-1", i, cn)
				}
			}
		})
	}
}
