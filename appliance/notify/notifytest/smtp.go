// Package notifytest holds test helpers for notifications: an SMTP sink on loopback that
// keeps what it receives, for notify's own tests and the browser walk-through.
package notifytest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Relay credentials the sink takes (AUTH PLAIN, under TLS only).
const (
	RelayUser     = "relay"
	RelayPassword = "relay-password"
)

// Msg is one message the sink received.
type Msg struct {
	From, To, User string
	TLS            bool
	Data           string
}

// SMTPSink is a go-smtp server on loopback that keeps what it receives. With a
// certificate it offers STARTTLS and takes AUTH PLAIN (RelayUser/RelayPassword) only
// under TLS; Roots then trusts its certificate.
type SMTPSink struct {
	Host  string
	Port  int
	Roots *x509.CertPool
	msgs  chan Msg
}

// NewSMTPSink starts a sink for the test's duration.
func NewSMTPSink(t testing.TB, withTLS bool) *SMTPSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPSink{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, msgs: make(chan Msg, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = discardLog{}
	if withTLS {
		cert, pool := TestCert(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.Roots = pool
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Next waits for the next message (a guard against a hang, not a timing check).
func (s *SMTPSink) Next(t testing.TB) Msg {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(60 * time.Second):
		t.Fatal("the SMTP sink received nothing")
		return Msg{}
	}
}

// TestCert is httptest's certificate for 127.0.0.1 and a pool that trusts it.
func TestCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv.TLS.Certificates[0], pool
}

// MailText is a received message as one reads it: header lines unfolded, the
// quoted-printable body decoded.
func MailText(t testing.TB, data string) string {
	t.Helper()
	data = strings.ReplaceAll(data, "\r\n", "\n")
	head, body, _ := strings.Cut(data, "\n\n")
	dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	if err != nil {
		t.Fatalf("message body: %v", err)
	}
	return strings.ReplaceAll(head, "\n ", " ") + "\n\n" + string(dec)
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

type sinkSession struct {
	sink *SMTPSink
	conn *smtp.Conn
	msg  Msg
}

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != RelayUser || pass != RelayPassword {
			return errors.New("bad credentials")
		}
		s.msg.User = user
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error { s.msg.From = from; return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.msg.To = to; return nil }
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.msg.TLS = s.conn.TLSConnectionState()
	s.msg.Data = string(b)
	s.sink.msgs <- s.msg
	return nil
}
func (s *sinkSession) Reset()        { s.msg = Msg{User: s.msg.User} }
func (s *sinkSession) Logout() error { return nil }
