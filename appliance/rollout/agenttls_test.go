package rollout

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/vendorhost"
)

// tlsAgent is an agent's side of the agent TLS listener in these tests: its
// credential and the client certificate it presents (none: zero value).
type tlsAgent struct {
	t    *testing.T
	url  string
	cred string
	cert tls.Certificate
}

func (a tlsAgent) do(method, path string, body, out any) (int, string) {
	a.t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.url+path, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	if a.cred != "" {
		req.Header.Set("Authorization", "Bearer "+a.cred)
	}
	cfg := &tls.Config{InsecureSkipVerify: true} // the agent pins; not under test here
	if a.cert.Certificate != nil {
		cfg.Certificates = []tls.Certificate{a.cert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s: %v", raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// csr makes a key and a CSR for it.
func csr(t *testing.T) (*ecdsa.PrivateKey, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "asks for admin"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func pair(t *testing.T, key *ecdsa.PrivateKey, certPEM string) tls.Certificate {
	t.Helper()
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	c, err := tls.X509KeyPair([]byte(certPEM), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatalf("client certificate %q: %v", certPEM, err)
	}
	return c
}

// TestAgentAPIClientCertificates: over the agent TLS listener an agent gets its client
// certificate at enrolment (subject: its id, whatever the CSR asked), must present it
// (require_client_cert), is told to renew after two thirds of its life on the
// appliance's clock, can renew an expired one, cannot use another agent's or a
// foreign CA's, and is refused at once when revoked.
func TestAgentAPIClientCertificates(t *testing.T) {
	v := newEnv(t)
	ca, err := vendorhost.LoadCA(t.TempDir(), v.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	v.e.SetClientCA(ClientCAConfig{CA: ca, Require: true, Validity: 30 * 24 * time.Hour})
	_, admin := v.servers(t, LoopbackActor)
	mux := http.NewServeMux()
	v.e.RegisterAgentAPI(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dora := client{t, admin.URL, map[string]string{ActorHeader: "dora"}}
	var tok tokenResponse
	if code, raw := dora.do("POST", "/api/v1/enrolment-tokens", tokenRequest{Name: "laptops", Ring: "pilot", MaxUses: 2}, &tok); code != 200 {
		t.Fatalf("create token: %d %s", code, raw)
	}
	enrol := func(host string) tlsAgent {
		key, req := csr(t)
		var enr agentapi.EnrollResponse
		anon := tlsAgent{t: t, url: srv.URL}
		if code, raw := anon.do("POST", "/agent/v1/enroll", agentapi.EnrollRequest{Token: tok.Token, CSR: req, Facts: agentapi.Facts{Hostname: host}}, &enr); code != 200 || enr.ClientCert == "" {
			t.Fatalf("enroll over TLS: %d %s", code, raw)
		}
		ag := tlsAgent{t: t, url: srv.URL, cred: enr.Credential, cert: pair(t, key, enr.ClientCert)}
		if cn := ag.cert.Leaf.Subject.CommonName; cn != enr.AgentID {
			t.Errorf("client certificate subject %q, want the agent id %q", cn, enr.AgentID)
		}
		return ag
	}
	ag, other := enrol("home-laptop"), enrol("other")
	checkin := func(a tlsAgent) (int, string, agentapi.OffersResponse) {
		var resp agentapi.OffersResponse
		code, raw := a.do("POST", "/agent/v1/checkin", agentapi.Facts{Hostname: "home-laptop"}, &resp)
		return code, raw, resp
	}
	if code, raw, resp := checkin(ag); code != 200 || resp.RenewCertificate {
		t.Fatalf("check-in with the certificate = %d %s (renew %v), want 200, no renewal yet", code, raw, resp.RenewCertificate)
	}
	bare := ag
	bare.cert = tls.Certificate{}
	if code, raw, _ := checkin(bare); code != 401 || !strings.Contains(raw, "client certificate is required") {
		t.Errorf("check-in without a certificate = %d %s, want 401 saying it is required", code, raw)
	}
	swapped := ag
	swapped.cert = other.cert
	if code, raw, _ := checkin(swapped); code != 401 || !strings.Contains(raw, "belongs to another agent") {
		t.Errorf("check-in with another agent's certificate = %d %s, want 401", code, raw)
	}
	foreignCA, _ := vendorhost.LoadCA(t.TempDir(), v.clk.Now())
	fkey, freq := csr(t)
	fpem, _ := foreignCA.SignClient([]byte(freq), "ignored", v.clk.Now(), time.Hour)
	forged := ag
	forged.cert = pair(t, fkey, string(fpem))
	if code, raw, _ := checkin(forged); code != 401 || !strings.Contains(raw, "client certificate: ") {
		t.Errorf("check-in with a foreign CA's certificate = %d %s, want 401", code, raw)
	}

	v.clk.Advance(21 * 24 * time.Hour) // past two thirds of 30 days
	if code, raw, resp := checkin(ag); code != 200 || !resp.RenewCertificate {
		t.Errorf("check-in after 21 days = %d %s (renew %v), want a renewal asked", code, raw, resp.RenewCertificate)
	}
	v.clk.Advance(10 * 24 * time.Hour) // expired
	if code, raw, _ := checkin(ag); code != 401 || !strings.Contains(raw, "client certificate expired") {
		t.Errorf("check-in with an expired certificate = %d %s, want 401 saying so", code, raw)
	}
	key, req := csr(t)
	var rr agentapi.RenewResponse
	if code, raw := ag.do("POST", "/agent/v1/certificate", agentapi.RenewRequest{CSR: req}, &rr); code != 200 {
		t.Fatalf("renewal with the expired certificate = %d %s", code, raw)
	}
	ag.cert = pair(t, key, rr.ClientCert)
	if code, raw, resp := checkin(ag); code != 200 || resp.RenewCertificate {
		t.Fatalf("check-in with the renewed certificate = %d %s", code, raw)
	}
	if code, raw := ag.do("POST", "/agent/v1/certificate", agentapi.RenewRequest{CSR: "not a CSR"}, nil); code != 400 {
		t.Errorf("renewal with garbage = %d %s, want 400", code, raw)
	}

	if err := v.e.RevokeAgent(context.Background(), "dora", ag.cert.Leaf.Subject.CommonName); err != nil {
		t.Fatal(err)
	}
	if code, raw, _ := checkin(ag); code != 401 {
		t.Errorf("check-in right after revocation = %d %s, want 401", code, raw)
	}
	if code, raw := ag.do("POST", "/agent/v1/certificate", agentapi.RenewRequest{CSR: req}, nil); code != 401 {
		t.Errorf("renewal after revocation = %d %s, want 401", code, raw)
	}
}
