package cache_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestMemoryHitAnswersLikeServeContent serves the same small target from
// the cache's memory copy (the full-body fast path) and from its file
// through http.ServeContent (memory copies off), and wants the same status,
// headers (but Date) and body for every kind of request.
func TestMemoryHitAnswersLikeServeContent(t *testing.T) {
	data := bytes.Repeat([]byte("fix "), 700)
	repo := tuftest.New(t)
	repo.AddTarget("dir/fix.bin", data)
	repo.Publish()
	mem := newEnv(t, repo)
	mem.refresh(t)
	file := newEnv(t, repo, withConfig(func(c *cache.Config) { c.MemoryObjectBytes = -1 }))
	file.refresh(t)
	etag := `"` + sha256Hex(data) + `"`
	prefixed := "/repos/demo/targets/dir/" + sha256Hex(data) + ".fix.bin"

	tests := []answerCase{
		{"get", "GET", "/repos/demo/targets/dir/fix.bin", nil, 200},
		{"get prefixed", "GET", prefixed, nil, 200},
		{"head", "HEAD", "/repos/demo/targets/dir/fix.bin", nil, 200},
		{"head prefixed", "HEAD", prefixed, nil, 200},
		{"if-modified-since (no modification time: ignored)", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}, 200},
		{"if-range without range (ignored)", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-Range", `"stale"`}, 200},
		{"if-none-match", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-None-Match", etag}, 304},
		{"if-none-match other", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-None-Match", `"other"`}, 200},
		{"if-match other", "GET", "/repos/demo/targets/dir/fix.bin", []string{"If-Match", `"other"`}, 412},
		{"range", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=10-19"}, 206},
		{"range if-range stale", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=10-19", "If-Range", `"stale"`}, 200},
		{"range unsatisfiable", "GET", "/repos/demo/targets/dir/fix.bin", []string{"Range", "bytes=99999-"}, 416},
	}
	// the first request may load the memory copy
	warm := func(t *testing.T) {
		for range 2 {
			mem.get(t, "/repos/demo/targets/dir/fix.bin")
		}
	}
	sameAnswers(t, tests, "file", file.srv.URL, "memory", mem.srv.URL, warm)
}

// TestSmallHitWrites counts the writes net/http makes on the connection for
// one hit served from memory: headers and body go out in one write when
// they fit net/http's 4 KiB connection buffer (http.ServeContent took two:
// headers with the first 512 bytes, then the rest), and in two for a 4 KiB
// body, which cannot fit with its headers.
func TestSmallHitWrites(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		maxWrites int64
	}{
		{"100 B", 100, 1},
		{"1 KiB", 1 << 10, 1},
		{"3.5 KiB", 3584, 1},
		{"4 KiB", 4 << 10, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte{'x'}, tc.size)
			repo := tuftest.New(t)
			repo.AddTarget("obj", data)
			repo.Publish()
			e := newEnv(t, repo)
			e.refresh(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var writes atomic.Int64
			srv := &http.Server{Handler: e.handler}
			go srv.Serve(writeCountingListener{ln, &writes})
			t.Cleanup(func() { srv.Close() })
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rd := bufio.NewReader(conn)
			buf := make([]byte, tc.size)
			for i := range 4 { // the miss, then hits
				writes.Store(0)
				if _, err := conn.Write([]byte("GET /repos/demo/targets/obj HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
					t.Fatal(err)
				}
				n, err := readResponse(rd, buf)
				if err != nil || !bytes.Equal(buf[:n], data) {
					t.Fatalf("request %d: %d bytes, %v", i, n, err)
				}
				if got := writes.Load(); i > 0 && got > tc.maxWrites {
					t.Errorf("hit %d took %d writes, want at most %d", i, got, tc.maxWrites)
				}
			}
		})
	}
}

// writeCountingListener counts the writes on its connections (before each,
// so a client that has read a whole response sees them all).
type writeCountingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountingConn{c, l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// ReadFrom keeps the TCP connection's own (sendfile, or one write per
// buffer), as net/http uses it when the connection has one; it counts as
// at least one write.
func (c writeCountingConn) ReadFrom(r io.Reader) (int64, error) {
	c.writes.Add(1)
	return c.Conn.(io.ReaderFrom).ReadFrom(r)
}
