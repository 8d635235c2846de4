package appliance

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/forward"
	"github.com/patchgate/patchgate/conf"
)

// TestSIEMWiring: with siem.https set, the daemon's own records (appliance.start first)
// reach the endpoint, and the panel shows the target with no backlog.
func TestSIEMWiring(t *testing.T) {
	var mu sync.Mutex
	var got []forward.Message
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []forward.Message
		if r.Header.Get("Authorization") != "Bearer tok" || json.NewDecoder(r.Body).Decode(&batch) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, batch...)
		mu.Unlock()
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.SIEM.HTTPS = forward.HTTPS{URL: srv.URL, Token: conf.Secret("tok"), CAFile: ca}
	cfg.SIEM.Poll = conf.Duration(100 * time.Millisecond)
	sys, err := New(context.Background(), cfg, Options{Build: Build{Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	defer func() { cancel(); <-done; sys.Close() }()
	for i := 0; ; i++ {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if i > 1000 {
			t.Fatal("no record reached the SIEM endpoint")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	first := got[0]
	mu.Unlock()
	if first.Seq != 1 || first.Action != "appliance.start" || first.App != "patchgate" {
		t.Errorf("first message = %+v, want record 1, appliance.start", first)
	}
	found := false
	for _, p := range sys.panels {
		if pn := p.Panel(ctx); pn.ID == "siem" {
			found = true
			if st := pn.Data.([]forward.TargetStatus); len(st) != 1 || st[0].Target != "https" {
				t.Errorf("siem panel = %+v, want the https target", st)
			}
		}
	}
	if !found {
		t.Error("no siem panel on the status page")
	}
	lintMetrics(t, sys, "patchgate_siem_")
}
