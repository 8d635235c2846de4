package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/conf"
)

// Sink is a target. Send returns nil only once the whole batch is delivered (see each
// sink for what that means); a Sink is used by one forwarder goroutine at a time.
type Sink interface {
	Send(ctx context.Context, recs []audit.Record) error
	String() string
	Close() error
}

// tlsConfig trusts caFile's certificates (or the system's when empty) for serverName.
func tlsConfig(caFile, serverName string) (*tls.Config, error) {
	pool, err := conf.CertPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("forward: ca_file: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, RootCAs: pool}, nil
}

// SyslogSink sends RFC 5424 messages over TLS with RFC 5425 octet-counted framing
// ("LEN SP MSG"), on one connection kept open between batches. RFC 5425 has no
// acknowledgement: a batch counts as delivered when TLS has taken all of it. Before each
// batch the connection is checked (the server never writes, so a read that does not
// time out means it closed) and reopened when closed, so a server that went away
// between batches loses nothing; a server that dies in the middle of a batch may lose
// the part the kernel had accepted (the HTTPS target acknowledges and has no such gap).
type SyslogSink struct {
	cfg      Syslog
	tls      *tls.Config
	host     string
	facility int
	timeout  time.Duration

	mu   sync.Mutex
	conn net.Conn
}

// NewSyslogSink checks the CA file and prepares the connection (made at the first Send).
func NewSyslogSink(cfg Syslog, hostname string) (*SyslogSink, error) {
	name := cfg.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(cfg.Address)
	}
	tc, err := tlsConfig(cfg.CAFile, name)
	if err != nil {
		return nil, err
	}
	return &SyslogSink{cfg: cfg, tls: tc, host: hostname, facility: cfg.facility(), timeout: 10 * time.Second}, nil
}

func (s *SyslogSink) String() string { return s.cfg.String() }

// Send writes the batch, opening the connection when there is none.
func (s *SyslogSink) Send(ctx context.Context, recs []audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !alive(s.conn) {
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: s.timeout}, Config: s.tls}
		c, err := d.DialContext(ctx, "tcp", s.cfg.Address)
		if err != nil {
			return fmt.Errorf("forward: syslog %s: %w", s.cfg.Address, err)
		}
		s.conn = c
	}
	var buf bytes.Buffer
	for _, r := range recs {
		m := Syslog5424(r, s.facility, s.host)
		buf.WriteString(strconv.Itoa(len(m)) + " ")
		buf.Write(m)
	}
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("forward: syslog %s: %w", s.cfg.Address, err)
	}
	return nil
}

// alive reports whether the server has not closed c: it never sends anything, so a
// short read must time out.
func alive(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close closes the connection.
func (s *SyslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// HTTPSSink POSTs each batch as a JSON array (see Message) with the bearer token; a 2xx
// reply acknowledges the whole batch.
type HTTPSSink struct {
	cfg    HTTPS
	host   string
	client *http.Client
}

// NewHTTPSSink checks the CA file and builds the client.
func NewHTTPSSink(cfg HTTPS, hostname string) (*HTTPSSink, error) {
	tc, err := tlsConfig(cfg.CAFile, "")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: nil, ForceAttemptHTTP2: true, IdleConnTimeout: time.Minute}
	return &HTTPSSink{cfg: cfg, host: hostname, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

func (s *HTTPSSink) String() string { return s.cfg.URL }

// Send posts the batch and waits for the reply.
func (s *HTTPSSink) Send(ctx context.Context, recs []audit.Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(JSON(recs, s.host)))
	if err != nil {
		return fmt.Errorf("forward: https: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Value())
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("forward: https: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("forward: https %s: %s", s.cfg.URL, resp.Status)
	}
	return nil
}

// Close drops idle connections.
func (s *HTTPSSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
