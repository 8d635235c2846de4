package fleet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/agentapi/clienttls"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/clock"
)

// TestLinkClientCertificateRenewal: over https the link enrols with a CSR, presents
// the certificate the parent signed, and renews it when a check-in asks, presenting
// the new one from then on.
func TestLinkClientCertificateRenewal(t *testing.T) {
	clk := clock.NewFake(t0)
	ca, err := vendorhost.LoadCA(t.TempDir(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	renew := false
	var seen []string // the serial of the client certificate of each check-in
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		sign := func(csr string) string {
			b, err := ca.SignClient([]byte(csr), "ag-1", t0, 30*24*time.Hour)
			if err != nil {
				t.Errorf("sign: %v", err)
			}
			return string(b)
		}
		switch r.URL.Path {
		case "/agent/v1/enroll":
			var req agentapi.EnrollRequest
			json.NewDecoder(r.Body).Decode(&req)
			json.NewEncoder(w).Encode(agentapi.EnrollResponse{AgentID: "ag-1", Credential: "pga1.ag-1.s3cret", ClientCert: sign(req.CSR)})
		case "/agent/v1/checkin":
			if len(r.TLS.PeerCertificates) == 0 {
				http.Error(w, `{"error": "a client certificate is required"}`, http.StatusUnauthorized)
				return
			}
			seen = append(seen, r.TLS.PeerCertificates[0].SerialNumber.String())
			json.NewEncoder(w).Encode(agentapi.OffersResponse{RenewCertificate: renew})
			renew = false
		case "/agent/v1/certificate":
			var req agentapi.RenewRequest
			json.NewDecoder(r.Body).Decode(&req)
			json.NewEncoder(w).Encode(agentapi.RenewResponse{ClientCert: sign(req.CSR)})
		}
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	p := DefaultParent()
	p.URL, p.Repositories, p.Roots, p.EnrolToken = srv.URL, []string{"vendor"}, "/roots", "pge1.tok.secret"
	p.Fingerprint = agentapi.Fingerprint(srv.Certificate().Raw)
	l, err := New(Options{Parent: p, Site: "north", StateDir: dir, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Check(ctx); err != nil {
		t.Fatalf("enrol and check in over TLS: %v", err)
	}
	mu.Lock()
	renew = true
	mu.Unlock()
	if err := l.Check(ctx); err != nil { // asked to renew
		t.Fatal(err)
	}
	if err := l.Check(ctx); err != nil { // with the new certificate
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != seen[1] || seen[1] == seen[2] {
		t.Errorf("client certificates at check-in %v: want the enrolment's twice, then the renewed one", seen)
	}
	for _, f := range []string{clienttls.PinFile, clienttls.ClientKeyFile, clienttls.ClientCertFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	if st := l.Status(); !st.MTLS || st.Pin != clienttls.NormFingerprint(p.Fingerprint) {
		t.Errorf("status %+v", st)
	}
}
