package appliance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// notifySocket is a unixgram socket standing in for systemd's NOTIFY_SOCKET.
type notifySocket struct {
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T, watchdog time.Duration) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", fmt.Sprint(watchdog.Microseconds()))
		t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	}
	ns := &notifySocket{conn: conn, msgs: make(chan string, 100)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return ns
}

// waitFor reads messages until one contains want, failing after timeout.
func (ns *notifySocket) waitFor(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q on the notify socket within %v", want, timeout)
		}
	}
}

// slowService becomes ready only when told, and takes stopDelay to stop.
type slowService struct {
	name      string
	ready     chan struct{}
	stopDelay time.Duration
	stopped   chan string
}

func (s *slowService) Name() string { return s.name }
func (s *slowService) Ready() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}
func (s *slowService) Health() []health.Problem {
	return []health.Problem{{Code: "demo", Severity: health.Warning, Text: s.name + " is a test double"}}
}
func (s *slowService) Run(ctx context.Context) error {
	<-ctx.Done()
	time.Sleep(s.stopDelay)
	s.stopped <- s.name
	return nil
}

func TestNotifyReadyWatchdogStopping(t *testing.T) {
	ns := newNotifySocket(t, 200*time.Millisecond)
	gate := &slowService{name: "gate", ready: make(chan struct{}), stopped: make(chan string, 1)}
	sys, cancel, done := startSystem(t, gate)

	// Not READY while a service is not ready; the status says which.
	m := ns.waitFor(t, "STATUS=starting", 3*time.Second)
	if strings.Contains(m, "READY=1") || !strings.Contains(m, "gate") {
		t.Fatalf("status before ready = %q, want starting and naming gate", m)
	}
	if resp := get(t, "http://"+sys.AdminAddr()+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before ready = %d, want 503", resp.StatusCode)
	}
	close(gate.ready)
	m = ns.waitFor(t, "READY=1", 3*time.Second)
	if !strings.Contains(m, "STATUS=ready") {
		t.Errorf("READY message %q has no STATUS=ready", m)
	}
	if resp := get(t, "http://"+sys.AdminAddr()+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after ready = %d, want 200", resp.StatusCode)
	}
	ns.waitFor(t, "WATCHDOG=1", 2*time.Second)
	cancel()
	ns.waitFor(t, "STOPPING=1", 3*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	done <- nil // for the cleanup
}

func TestShutdownInReverseOrderAndBounded(t *testing.T) {
	order := make(chan string, 3)
	first := &slowService{name: "first", ready: closed(), stopped: order}
	second := &slowService{name: "second", ready: closed(), stopped: order}
	sys, cancel, done := startSystem(t, first, second)
	waitReady(t, sys)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	done <- nil
	if a, b := <-order, <-order; a != "second" || b != "first" {
		t.Errorf("stop order = %s, %s; want second, first", a, b)
	}
	// The listeners are closed: a new connection is refused.
	if _, err := net.DialTimeout("tcp", sys.AdminAddr(), time.Second); err == nil {
		t.Error("admin listener still accepts connections after Run returned")
	}
}

func TestShutdownTimeoutNamesLateService(t *testing.T) {
	stuck := &slowService{name: "stuck", ready: closed(), stopDelay: 5 * time.Second, stopped: make(chan string, 1)}
	sys := newSystem(t, testConfig(t), Options{})
	sys.cfg.Shutdown.Timeout = conf.Duration(300 * time.Millisecond)
	sys.services = append([]Service{stuck}, sys.services...)
	cancel, done := runSystem(t, sys)
	waitReady(t, sys)
	start := time.Now()
	cancel()
	err := <-done
	done <- nil // for the cleanup
	if err == nil || !strings.Contains(err.Error(), "stuck did not stop within 300ms") {
		t.Fatalf("Run = %v, want the stuck service named", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %v with a 300ms bound", took)
	}
}

func TestStatusPageBothRenderings(t *testing.T) {
	svc := &slowService{name: "demo-service", ready: closed(), stopped: make(chan string, 1)}
	sys, _, _ := startSystem(t, svc)
	waitReady(t, sys)
	st := statusJSON(t, sys)
	if st.Build.Version != "test" || !st.Ready || len(st.Services) != len(sys.services) {
		t.Errorf("JSON status = version %q ready %v services %d; want test, true, %d", st.Build.Version, st.Ready, len(st.Services), len(sys.services))
	}

	resp, body := httpapitest.Do(t, nil, httpapitest.NewRequest(t, "GET", "http://"+sys.AdminAddr()+"/", nil, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8"))
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("HTML Content-Type = %q", ct)
	}
	for _, want := range []string{"<title>Status · Patchgate</title>", "demo-service", "demo-service is a test double", "distribution-http"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("HTML status page lacks %q", want)
		}
	}
}

func TestMetricNamesLint(t *testing.T) {
	sys := newSystem(t, testConfig(t), Options{})
	ours := 0
	for _, name := range lintMetrics(t, sys, "") {
		switch {
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
		case metricName.MatchString(name):
			ours++
		default:
			t.Errorf("metric %s: want patchgate_<subsystem>_<name>_<unit>", name)
		}
	}
	if ours == 0 {
		t.Error("no patchgate_ metrics registered")
	}
}

func TestNewFailsClearly(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := testConfig(t)
		cfg.Admin.Listen = ln.Addr().String()
		_, err = New(context.Background(), cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), "admin listener: address "+ln.Addr().String()+" is already in use") {
			t.Fatalf("New with a busy port = %v", err)
		}
	})
	t.Run("state dir not writable", func(t *testing.T) {
		cfg := testConfig(t)
		file := filepath.Join(cfg.State.Dir, "a-file")
		os.WriteFile(file, nil, 0o600)
		cfg.State.Dir = filepath.Join(file, "state")
		_, err := New(context.Background(), cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), "state directory "+cfg.State.Dir) {
			t.Fatalf("New with an unusable state dir = %v", err)
		}
	})
	t.Run("corrupt database", func(t *testing.T) {
		cfg := testConfig(t)
		db := filepath.Join(cfg.State.Dir, "patchgate.db")
		os.WriteFile(db, []byte(strings.Repeat("garbage!", 1000)), 0o600)
		_, err := New(context.Background(), cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), db) {
			t.Fatalf("New with a corrupt database = %v, want the file named", err)
		}
	})
}
