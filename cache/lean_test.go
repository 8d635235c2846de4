package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// leanServer serves h on loopback through a Lean listener and returns its base URL.
func leanServer(t testing.TB, h *cache.Handler, counter *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inner net.Listener = ln
	if counter != nil {
		inner = writeCountingListener{ln, counter}
	}
	return leanServeOn(t, inner, &cache.Lean{Handler: func() http.Handler { return h }, Small: h.Small}, h)
}

// leanServeOn serves h on ln through lean and returns the base URL.
func leanServeOn(t testing.TB, ln net.Listener, lean *cache.Lean, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h}
	go srv.Serve(lean.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// smallAndLarge is an env whose repository has a small target, held in memory once
// this returns, and a large one.
func smallAndLarge(t *testing.T, smallName string, small []byte, largeName string, large []byte) *env {
	t.Helper()
	repo := tuftest.New(t)
	repo.AddTarget(smallName, small)
	repo.AddTarget(largeName, large)
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	for range 2 { // the miss, then the load of the memory copy
		e.get(t, "/repos/demo/targets/"+smallName)
	}
	return e
}

type laterGate struct{}

func (laterGate) Admit(context.Context, cache.GateRequest) (cache.Decision, func(cache.Served)) {
	return cache.Decision{Status: 429, Reason: "later"}, nil
}

// TestLeanAnswersLikeNetHTTP asks the same requests of the cache handler behind
// net/http alone and behind the Lean loop, and wants the same status, headers (but
// Date) and body: the loop's own answers (plain hits in memory) and those it hands to
// net/http (Range, conditionals, large objects, errors, other methods) alike.
func TestLeanAnswersLikeNetHTTP(t *testing.T) {
	small := bytes.Repeat([]byte("fix "), 1024) // 4 KiB
	e := smallAndLarge(t, "dir/fix.bin", small, "large.bin", bytes.Repeat([]byte("big "), 50<<10))
	leanURL := leanServer(t, e.handler, nil)
	refusing := &cache.Handler{Cache: e.cache, Gate: laterGate{}}
	refusingLean := leanServer(t, refusing, nil)
	prefixed := "/repos/demo/targets/dir/" + sha256Hex(small) + ".fix.bin"
	etag := `"` + sha256Hex(small) + `"`

	tests := []answerCase{
		{"get", "GET", "/repos/demo/targets/dir/fix.bin", nil, 200},
		{"get prefixed", "GET", prefixed, nil, 200},
		{"head", "HEAD", "/repos/demo/targets/dir/fix.bin", nil, 200},
		{"with agent headers", "GET", "/repos/demo/targets/dir/fix.bin", []string{"User-Agent", "patchgate-agent/1", "X-Device", "d1"}, 200},
		{"if-none-match (net/http)", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-None-Match", etag}, 304},
		{"range (net/http)", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=10-19"}, 206},
		{"large (net/http)", "GET", "/repos/demo/targets/large.bin", nil, 200},
		{"unknown target (net/http)", "GET", "/repos/demo/targets/nope", nil, 404},
		{"unknown repository (net/http)", "GET", "/repos/other/targets/x", nil, 404},
		{"post (net/http)", "POST", "/repos/demo/targets/dir/fix.bin", nil, 405},
		{"query string (net/http)", "GET", "/repos/demo/targets/dir/fix.bin?x=1", nil, 200},
	}
	sameAnswers(t, tests, "net/http", e.srv.URL, "lean", leanURL, nil)
	t.Run("gate refuses", func(t *testing.T) {
		resp, body := do(t, "GET", refusingLean+"/repos/demo/targets/dir/fix.bin")
		if resp.StatusCode != 429 || string(body) != "later\n" {
			t.Errorf("got %d %q, want 429 %q", resp.StatusCode, body, "later\n")
		}
	})
	t.Run("gate told what was served", func(t *testing.T) {
		g := &servedGate{}
		base := leanServer(t, &cache.Handler{Cache: e.cache, Gate: g}, nil)
		do(t, "GET", base+"/repos/demo/targets/dir/fix.bin")
		do(t, "HEAD", base+"/repos/demo/targets/dir/fix.bin")
		g.mu.Lock()
		defer g.mu.Unlock()
		want := []cache.Served{{Status: 200, Bytes: int64(len(small)), Complete: true}, {Status: 200}}
		if diff := cmp.Diff(want, g.served); diff != "" {
			t.Errorf("served (-want +got):\n%s", diff)
		}
	})
}

// TestLeanOneWrite wants a 4 KiB hit answered with one write on the Lean loop (net/http
// takes two), and a keep-alive connection to go on working when a request on it is
// handed to net/http (a large object between small ones): on a TCP connection (the
// loop reads the socket itself) and on a wrapped one (blocking reads).
func TestLeanOneWrite(t *testing.T) {
	small := bytes.Repeat([]byte{'x'}, 4<<10)
	large := bytes.Repeat([]byte{'y'}, 100<<10)
	e := smallAndLarge(t, "obj", small, "large", large)
	for _, raw := range []bool{true, false} {
		t.Run(map[bool]string{true: "raw", false: "wrapped"}[raw], func(t *testing.T) {
			leanOneWrite(t, e, raw, small, large)
		})
	}
}

func leanOneWrite(t *testing.T, e *env, raw bool, small, large []byte) {
	var writes atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inner net.Listener = writeCountingListener{ln, &writes}
	if raw {
		inner = rawCountingListener{inner}
	}
	base := leanServeOn(t, inner, &cache.Lean{Handler: func() http.Handler { return e.handler }, Small: e.handler.Small}, e.handler)
	conn, err := net.Dial("tcp", base[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	buf := make([]byte, len(large))
	for i, tc := range []struct {
		path      string
		want      []byte
		maxWrites int64
	}{
		{"obj", small, 1}, {"obj", small, 1}, {"large", large, 0}, {"obj", small, 0},
	} {
		writes.Store(0)
		if _, err := conn.Write([]byte("GET /repos/demo/targets/" + tc.path + " HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		n, err := readResponse(rd, buf)
		if err != nil || !bytes.Equal(buf[:n], tc.want) {
			t.Fatalf("request %d (%s): %d bytes, %v", i, tc.path, n, err)
		}
		if got := writes.Load(); tc.maxWrites > 0 && got > tc.maxWrites {
			t.Errorf("request %d (%s) took %d writes, want at most %d", i, tc.path, got, tc.maxWrites)
		}
	}
}

// rawCountingListener's connections count writes and still have their socket
// (syscall.Conn), so the loop reads it itself.
type rawCountingListener struct{ net.Listener }

func (l rawCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return rawCountingConn{c.(writeCountingConn)}, nil
}

type rawCountingConn struct{ writeCountingConn }

func (c rawCountingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// TestLeanDeadlines: an idle connection is closed after IdleTimeout; a request whose
// header comes in pieces, slower than ReadHeaderTimeout, is still answered (net/http
// takes it over, as before the loop read sockets itself); one in pieces within the
// timeout is answered by the loop.
func TestLeanDeadlines(t *testing.T) {
	small := bytes.Repeat([]byte{'x'}, 4<<10)
	e := smallAndLarge(t, "obj", small, "large", bytes.Repeat([]byte{'y'}, 100<<10))
	serve := func(t *testing.T, idle, header time.Duration) net.Conn {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := leanServeOn(t, ln, &cache.Lean{Handler: func() http.Handler { return e.handler }, Small: e.handler.Small,
			IdleTimeout: idle, ReadHeaderTimeout: header}, e.handler)
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetReadDeadline(time.Now().Add(time.Minute)) // a guard against a hang, not a measure
		return conn
	}
	pieces := func(t *testing.T, conn net.Conn, pause time.Duration) {
		rd := bufio.NewReader(conn)
		buf := make([]byte, len(small))
		for range 2 {
			for _, piece := range []string{"GET /repos/demo/targets/obj HTTP/1.1\r\nHo", "st: test\r", "\n\r\n"} {
				if _, err := conn.Write([]byte(piece)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(pause)
			}
			if n, err := readResponse(rd, buf); err != nil || !bytes.Equal(buf[:n], small) {
				t.Fatalf("answer: %d bytes, %v", n, err)
			}
		}
	}
	t.Run("idle closes", func(t *testing.T) {
		conn := serve(t, time.Millisecond, time.Minute)
		if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("read on an idle connection: %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("slow header to net/http", func(t *testing.T) {
		pieces(t, serve(t, time.Minute, time.Millisecond), 20*time.Millisecond)
	})
	t.Run("header in pieces", func(t *testing.T) {
		pieces(t, serve(t, time.Minute, time.Minute), time.Millisecond)
	})
}
