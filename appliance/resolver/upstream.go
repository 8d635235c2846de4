package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
)

// upstreamFailures is how many failures in a row mark an upstream down until a health
// check (or a later query) succeeds.
const upstreamFailures = 3

// Reuse of upstream TCP and DNS-over-TLS connections: at most maxIdleConns idle ones are
// kept per upstream, each for at most connIdleTimeout (servers close idle connections
// after some seconds: Unbound after 30, miekg/dns after 8; one closed meanwhile fails on
// its next use and is replaced at once).
const (
	maxIdleConns    = 4
	connIdleTimeout = 5 * time.Second
)

// upstream is one upstream resolver, its idle connections and what is known of its
// health.
type upstream struct {
	addr  string
	proto string
	udp   *dns.Client // nil unless proto is udp
	tcp   *dns.Client // TCP, or DNS-over-TLS for proto tls
	clock clock.Clock

	fails   atomic.Int32
	down    atomic.Bool
	mu      sync.Mutex
	lastErr string
	idle    []idleConn // newest last
}

// idleConn is a TCP or TLS connection to an upstream waiting for its next query.
type idleConn struct {
	c     *dns.Conn
	since time.Time
}

func newUpstream(u Upstream, timeout time.Duration, clk clock.Clock) (*upstream, error) {
	up := &upstream{addr: u.Address, proto: u.Protocol, clock: clk}
	if up.proto == "" {
		up.proto = "udp"
	}
	switch up.proto {
	case "udp":
		up.udp = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.DefaultMsgSize}
		up.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	case "tcp":
		up.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	case "tls":
		tc := &tls.Config{ServerName: u.TLSServerName, MinVersion: tls.VersionTLS12}
		pool, err := conf.CertPool(u.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("resolver: upstream %s: %w", u.Address, err)
		}
		tc.RootCAs = pool
		up.tcp = &dns.Client{Net: "tcp-tls", Timeout: timeout, TLSConfig: tc}
	default:
		return nil, fmt.Errorf("resolver: upstream %s: unknown protocol %q", u.Address, u.Protocol)
	}
	return up, nil
}

func (u *upstream) name() string { return u.proto + "://" + u.addr }

func (u *upstream) failed(err error) {
	u.mu.Lock()
	u.lastErr = err.Error()
	u.mu.Unlock()
	if u.fails.Add(1) >= upstreamFailures {
		u.down.Store(true)
	}
}

func (u *upstream) succeeded() {
	u.fails.Store(0)
	u.down.Store(false)
}

func (u *upstream) lastError() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastErr
}

// exchange sends q (already given a fresh ID) over the upstream's protocol; for udp a
// truncated answer is asked again over TCP.
func (u *upstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if u.udp != nil {
		r, _, err := u.udp.ExchangeContext(ctx, q, u.addr)
		if err != nil || !r.Truncated {
			return r, err
		}
	}
	return u.exchangeStream(ctx, q)
}

// exchangeStream sends q over TCP or TLS, one query at a time per connection, on an
// idle connection when there is one. A reused connection that fails (the server may
// have closed it) is closed and the next one (or a new one) is tried while ctx lasts;
// a connection that answered goes back to the idle ones.
func (u *upstream) exchangeStream(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	for {
		c := u.takeIdle()
		if c == nil {
			break
		}
		r, _, err := u.tcp.ExchangeWithConnContext(ctx, q, c)
		if err == nil {
			u.putIdle(c)
			return r, nil
		}
		c.Close()
		if ctx.Err() != nil {
			return nil, err
		}
	}
	c, err := u.tcp.DialContext(ctx, u.addr)
	if err != nil {
		return nil, err
	}
	r, _, err := u.tcp.ExchangeWithConnContext(ctx, q, c)
	if err != nil {
		c.Close()
		return nil, err
	}
	u.putIdle(c)
	return r, nil
}

// takeIdle returns the newest idle connection, closing those idle too long; nil when
// there is none.
func (u *upstream) takeIdle() *dns.Conn {
	now := u.clock.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	for len(u.idle) > 0 {
		ic := u.idle[len(u.idle)-1]
		u.idle = u.idle[:len(u.idle)-1]
		if now.Sub(ic.since) < connIdleTimeout {
			return ic.c
		}
		ic.c.Close()
	}
	return nil
}

// putIdle keeps c for the next query, or closes it when maxIdleConns are idle already.
func (u *upstream) putIdle(c *dns.Conn) {
	now := u.clock.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.idle) >= maxIdleConns {
		c.Close()
		return
	}
	u.idle = append(u.idle, idleConn{c: c, since: now})
}

// idleConns is how many idle connections u keeps.
func (u *upstream) idleConns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.idle)
}

// closeIdle closes every idle connection of every upstream.
func (f *forwarder) closeIdle() {
	for _, u := range f.ups {
		u.mu.Lock()
		for _, ic := range u.idle {
			ic.c.Close()
		}
		u.idle = nil
		u.mu.Unlock()
	}
}

// forwarder sends queries to the upstreams: healthy ones first in the configured order,
// each attempt with a fresh random ID, the next upstream when one fails. It is safe for
// concurrent use.
type forwarder struct {
	ups     []*upstream
	timeout time.Duration
	udpSize uint16
	onError func(up string, kind string)
}

// errAllFailed is returned when no upstream gave a usable answer.
var errAllFailed = errors.New("every upstream failed")

// forward asks the upstreams for (name, qtype) and returns the first usable answer:
// one with the same question (case-insensitively) and an rcode other than SERVFAIL,
// REFUSED, NOTIMP or FORMERR. name is canonical; do asks for DNSSEC records.
func (f *forwarder) forward(ctx context.Context, name string, qtype uint16, do bool) (*dns.Msg, *upstream, error) {
	q := new(dns.Msg)
	q.RecursionDesired = true
	q.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	q.SetEdns0(f.udpSize, do)
	var errs []string
	for _, up := range f.order() {
		if ctx.Err() != nil {
			break
		}
		q.Id = dns.Id()
		actx, cancel := context.WithTimeout(ctx, f.timeout)
		r, err := up.exchange(actx, q)
		cancel()
		if err == nil {
			err = checkAnswer(q, r)
		}
		if err != nil {
			up.failed(err)
			if f.onError != nil {
				f.onError(up.name(), errorKind(err))
			}
			errs = append(errs, up.name()+": "+err.Error())
			continue
		}
		up.succeeded()
		return r, up, nil
	}
	if len(errs) == 0 {
		return nil, nil, fmt.Errorf("resolver: forward %s: %w", name, ctx.Err())
	}
	return nil, nil, fmt.Errorf("resolver: forward %s: %w: %s", name, errAllFailed, strings.Join(errs, "; "))
}

// order lists the upstreams to try: up ones first, then those marked down, each group in
// the configured order (so a recovered primary takes over again).
func (f *forwarder) order() []*upstream {
	out := make([]*upstream, 0, len(f.ups))
	for _, u := range f.ups {
		if !u.down.Load() {
			out = append(out, u)
		}
	}
	for _, u := range f.ups {
		if u.down.Load() {
			out = append(out, u)
		}
	}
	return out
}

// checkAnswer rejects answers that do not answer q.
func checkAnswer(q, r *dns.Msg) error {
	switch {
	case r == nil:
		return errors.New("no answer")
	case !r.Response:
		return errors.New("answer without the QR bit")
	case r.Id != q.Id:
		return errors.New("answer with another ID")
	case len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
		r.Question[0].Qtype != q.Question[0].Qtype || r.Question[0].Qclass != q.Question[0].Qclass:
		return errors.New("answer to another question")
	}
	switch r.Rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented, dns.RcodeFormatError:
		return fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	return nil
}

// errorKind folds an error into a few label values for metrics.
func errorKind(err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.HasPrefix(err.Error(), "rcode "):
		return "rcode"
	case strings.HasPrefix(err.Error(), "answer"), strings.HasPrefix(err.Error(), "no answer"):
		return "bad_answer"
	}
	return "network"
}

// check asks every upstream for the root NS records and updates its health.
func (f *forwarder) check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, up := range f.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := new(dns.Msg)
			q.Id = dns.Id()
			q.RecursionDesired = true
			q.Question = []dns.Question{{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET}}
			actx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			r, err := up.exchange(actx, q)
			if err == nil {
				err = checkAnswer(q, r)
			}
			if err != nil {
				if ctx.Err() == nil {
					up.failed(err)
					up.fails.Store(upstreamFailures) // a failed check marks it down at once
					up.down.Store(true)
				}
				return
			}
			up.succeeded()
		}()
	}
	wg.Wait()
}

// status lists each upstream's name and whether it is up.
func (f *forwarder) status() []UpstreamStatus {
	out := make([]UpstreamStatus, 0, len(f.ups))
	for _, u := range f.ups {
		out = append(out, UpstreamStatus{Name: u.name(), Up: !u.down.Load(), LastError: u.lastError()})
	}
	return out
}

// UpstreamStatus is one upstream's line on the status panel.
type UpstreamStatus struct {
	Name      string `json:"name"`
	Up        bool   `json:"up"`
	LastError string `json:"last_error,omitempty"`
}
