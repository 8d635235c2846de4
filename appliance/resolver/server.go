package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
)

// Options are what the resolver needs besides its Config.
type Options struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nowhere
	Clock      clock.Clock           // nil is the wall clock
	// BaseDir is where relative list file paths start (the config file's directory).
	BaseDir string
	// Hooks; each may also be set later with the Set methods, and may stay nil.
	Assets  AssetNamer
	Answers AnswerSink
	Events  EventSink
}

// Server is the allowlisting DNS server. Build it with New, bind it with Listen, serve
// with Run (once); Run's return closes the sockets. Its methods are safe for concurrent
// use. Run owns every goroutine the Server starts and stops them before returning.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	baseDir string
	hooks   hooks
	metrics *metrics

	policy   atomic.Pointer[policy]
	cache    *answerCache
	fwd      *forwarder
	limiter  *clientLimiter
	qlog     *queryLog
	flight   singleflight.Group
	inflight chan struct{} // semaphore: forwarded queries at once

	prefetchCh   chan cacheKey
	prefetchHits int
	udpSize      int
	udpReaders   int // per listen address (defaultUDPReaders)
	localTTL     uint32

	counts    [4]atomic.Uint64 // queries by Decision, for the panel
	reloadMu  sync.Mutex       // one reload at a time
	mu        sync.Mutex
	listErrs  []loadError
	listeners []listener
	ready     atomic.Bool
}

// New builds a Server from cfg and loads its lists. A list that cannot be loaded does
// not stop it: its names stay blocked and Health reports the file and line until a
// reload succeeds. Nothing is bound or started until Listen and Run.
func New(cfg Config, opts Options) (*Server, error) {
	defaults.Fill(&opts.Clock, &opts.Logger, &opts.Registerer)
	if cfg.Limits.UDPBufferSize < 1232 {
		cfg.Limits.UDPBufferSize = 1232
	}
	if cfg.Limits.MaxConcurrent < 1 {
		cfg.Limits.MaxConcurrent = 1
	}
	if err := CheckPrivateDomains(cfg.PrivateDomains); err != nil {
		return nil, fmt.Errorf("resolver: %w", err)
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 2 * time.Second
	}
	s := &Server{
		cfg:        cfg,
		log:        opts.Logger,
		clock:      opts.Clock,
		baseDir:    opts.BaseDir,
		cache:      newAnswerCache(cfg.Cache),
		limiter:    newClientLimiter(cfg.Limits.ClientRate, cfg.Limits.ClientBurst),
		qlog:       newQueryLog(cfg.QueryLog, opts.Logger),
		inflight:   make(chan struct{}, cfg.Limits.MaxConcurrent),
		prefetchCh: make(chan cacheKey, 64),
		udpSize:    cfg.Limits.UDPBufferSize,
		udpReaders: defaultUDPReaders(),
		localTTL:   uint32(cfg.LocalTTL / time.Second),
	}
	if cfg.Cache.Prefetch {
		s.prefetchHits = max(1, cfg.Cache.PrefetchMinHits)
	}
	s.SetAssetNamer(opts.Assets)
	s.SetAnswerSink(opts.Answers)
	s.SetEventSink(opts.Events)
	m, err := newMetrics(opts.Registerer, func() float64 { return float64(s.cache.len()) })
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.fwd = &forwarder{timeout: cfg.UpstreamTimeout, udpSize: uint16(cfg.Limits.UDPBufferSize),
		onError: func(up, kind string) { m.upstreamErrs.WithLabelValues(up, kind).Inc() }}
	for _, u := range cfg.Upstreams {
		up, err := newUpstream(u, cfg.UpstreamTimeout, opts.Clock)
		if err != nil {
			return nil, err
		}
		s.fwd.ups = append(s.fwd.ups, up)
		m.upstreamErrs.WithLabelValues(up.name(), "timeout") // show the series from the start
	}
	if err := s.reload(nil); err != nil {
		s.log.Error("resolver: lists not loaded; their names stay blocked until they are fixed", "err", err)
	}
	return s, nil
}

// Name is the service name.
func (s *Server) Name() string { return "resolver" }

// Ready reports whether the Server is answering queries.
func (s *Server) Ready() bool { return s.ready.Load() }

// Health lists the lists that failed to load and the upstreams that are down.
func (s *Server) Health() []health.Problem {
	var ps []health.Problem
	s.mu.Lock()
	for _, e := range s.listErrs {
		ps = append(ps, health.Problem{Code: "resolver-list-invalid", Severity: health.Error,
			Text: fmt.Sprintf("list %s: %v (the previous version, if any, is still used)", e.list, e.err)})
	}
	s.mu.Unlock()
	st := s.fwd.status()
	down := 0
	for _, u := range st {
		if !u.Up {
			down++
			s.metrics.upstreamUp.WithLabelValues(u.Name).Set(0)
		} else {
			s.metrics.upstreamUp.WithLabelValues(u.Name).Set(1)
		}
	}
	switch {
	case len(st) == 0:
		ps = append(ps, health.Problem{Code: "resolver-no-upstreams", Severity: health.Info,
			Text: "no upstream resolvers configured: allowed names that are not rewritten get SERVFAIL"})
	case down == len(st):
		ps = append(ps, health.Problem{Code: "resolver-upstreams-down", Severity: health.Error,
			Text: "no upstream resolver answers: allowed names cannot be resolved"})
	case down > 0:
		for _, u := range st {
			if !u.Up {
				ps = append(ps, health.Problem{Code: "resolver-upstream-down", Severity: health.Warning,
					Text: fmt.Sprintf("upstream %s does not answer: %s", u.Name, u.LastError)})
			}
		}
	}
	return ps
}

// Reload reads every list again and swaps the new lists in at once. A list with a bad
// file keeps its previous version; the returned error names each such file and line
// (Health reports them too). The caller logs it: the appliance calls Reload on SIGHUP.
func (s *Server) Reload() error {
	return s.reload(s.policy.Load())
}

func (s *Server) reload(prev *policy) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	p, errs := compile(&s.cfg, s.baseDir, prev, s.clock.Now())
	s.policy.Store(p)
	s.mu.Lock()
	s.listErrs = errs
	s.mu.Unlock()
	for name, set := range p.lists {
		s.metrics.listEntries.WithLabelValues(name).Set(float64(set.Len()))
	}
	if len(errs) > 0 {
		s.metrics.reloads.WithLabelValues("error").Inc()
		var all []error
		for _, e := range errs {
			all = append(all, fmt.Errorf("list %s: %w", e.list, e.err))
		}
		return fmt.Errorf("resolver: reload: %w", errors.Join(all...))
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	if prev != nil {
		s.log.Info("resolver: lists reloaded", "lists", len(p.lists))
	}
	return nil
}

// Listen binds every configured address over UDP and TCP (the same port for both, also
// when the port is 0). Call it once, before Run.
func (s *Server) Listen() error {
	for _, addr := range s.cfg.Listen {
		l, err := listenBoth(addr, s.udpReaders)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, l)
		s.mu.Unlock()
	}
	return nil
}

// defaultUDPReaders is how many goroutines read UDP queries per listen address, each on its own
// socket where SO_REUSEPORT allows: one per two Ps, at least one. A reader answers from
// memory at well over 50,000 queries a second on one core, and each further socket
// splits the batches its reader takes per wake-up, so at moderate rates every query
// costs more wake-ups (test/bench/RESULTS.md: at 10k QPS on 2 vCPUs, one socket spent
// about 0.9x Unbound's CPU per query, two sockets about 1.2x). The other Ps stay free
// for forwarding, TCP and the rest of the appliance.
func defaultUDPReaders() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Addrs returns the bound UDP addresses (the TCP ones have the same ports).
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.udp[0].LocalAddr().String())
	}
	return out
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, l := range s.listeners {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
}

// Close releases the sockets; Run does it too when it returns.
func (s *Server) Close() error { return s.closeListeners() }

// Run serves until ctx is done: UDP readers, TCP connections, upstream health checks,
// list reloads when a list file changes, prefetches and the blocked-query events. It returns nil after ctx is done and everything it started has stopped.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	listeners := s.listeners
	s.mu.Unlock()
	if len(listeners) == 0 {
		return errors.New("resolver: run: not listening (call Listen first)")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	tcpSlots := make(chan struct{}, max(1, s.cfg.Limits.TCPMaxConnections))
	for _, l := range listeners {
		// One reader per socket where each reader has its own (SO_REUSEPORT), else
		// every reader on the one socket.
		perSocket := max(1, s.udpReaders/len(l.udp))
		for _, u := range l.udp {
			for range perSocket {
				wg.Go(func() { s.serveUDP(ctx, u, &wg) })
			}
		}
		wg.Go(func() { s.serveTCP(ctx, l.tcp, tcpSlots, &wg) })
	}
	for range 2 {
		wg.Go(func() { s.prefetcher(ctx) })
	}
	wg.Go(func() { s.housekeeping(ctx) })
	s.ready.Store(true)
	s.log.Info("resolver: serving", "addrs", s.Addrs(), "upstreams", len(s.fwd.ups))

	<-ctx.Done()
	s.ready.Store(false)
	cancel()
	err := s.closeListeners()
	wg.Wait()
	s.fwd.closeIdle()
	return err
}

// serveUDP reads queries from u until it is closed, in batches (udpSocket). Local
// answers are made on this goroutine and sent together once the batch is answered;
// forwarded queries get a goroutine each, at most Limits.MaxConcurrent at once: past
// that, queries are dropped (the client retries) and counted.
func (s *Server) serveUDP(ctx context.Context, u *udpConn, wg *sync.WaitGroup) {
	sock, err := newUDPSocket(u, s.udpSize)
	if err != nil {
		s.log.Error("resolver: UDP reader not started", "err", err)
		return
	}
	handle := func(n int) {
		for i := range n {
			pkt, from, ok := sock.datagram(i)
			if !ok {
				continue
			}
			resp, r := s.answer(pkt, from.Addr(), false, sock.answerBuf(i))
			if r == nil {
				sock.reply(i, resp)
				continue
			}
			select {
			case s.inflight <- struct{}{}:
			default:
				s.metrics.dropped.WithLabelValues("overload").Inc()
				putRequest(r)
				continue
			}
			wg.Go(func() {
				defer func() { <-s.inflight }()
				if resp := s.resolve(ctx, r, nil); resp != nil {
					u.WriteToUDPAddrPort(resp, from)
				}
				putRequest(r)
			})
		}
	}
	for {
		err := sock.serve(handle)
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return
		}
		// e.g. an ICMP port unreachable about an earlier answer: go on
	}
}

// resolve is the second half of the request path for an allowed name not in the cache:
// it asks the upstreams (one exchange for concurrent identical questions), caches the
// answer and answers r from it, or SERVFAIL when no upstream answers.
func (s *Server) resolve(ctx context.Context, r *request, buf []byte) []byte {
	up, err := s.lookup(ctx, r.key())
	if err != nil {
		s.log.Debug("resolver: upstream failed", "name", r.name, "err", err)
		r.reason = "upstream failed"
		if errors.Is(err, errBadAnswer) {
			r.reason = err.Error()
		}
		return s.local(r, dns.RcodeServerFailure, buf)
	}
	return s.allowed(r, up, buf)
}

// lookup forwards k upstream, coalescing concurrent identical lookups, and caches the
// answer. The returned message is shared: callers must not modify it.
func (s *Server) lookup(ctx context.Context, k cacheKey) (*dns.Msg, error) {
	key := k.name + "/" + strconv.Itoa(int(k.qtype)) + "/" + strconv.FormatBool(k.do)
	v, err, _ := s.flight.Do(key, func() (any, error) {
		m, up, err := s.fwd.forward(ctx, k.name, k.qtype, k.do)
		if err != nil {
			return nil, err
		}
		clean, err := scrub(k.name, k.qtype, k.do, m)
		if err != nil {
			// The upstream did answer: no other is asked, and the failure is
			// remembered so that retries do not go upstream either.
			s.metrics.upstreamErrs.WithLabelValues(up.name(), "bad_answer").Inc()
			s.cache.putFailure(k, m.Question, s.clock.Now())
			return nil, err
		}
		return s.cache.put(k, clean, s.clock.Now()), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*dns.Msg), nil
}

// prefetcher refreshes popular cached answers before they expire.
func (s *Server) prefetcher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case k := <-s.prefetchCh:
			if _, err := s.lookup(ctx, k); err == nil {
				s.metrics.prefetches.Inc()
			}
		}
	}
}

// serveTCP accepts connections on ln, at most cap(slots) open at once (more are closed
// at once), each served on its own goroutine.
func (s *Server) serveTCP(ctx context.Context, ln *net.TCPListener, slots chan struct{}, wg *sync.WaitGroup) {
	var conns sync.Map
	defer func() {
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.metrics.dropped.WithLabelValues("tcp_limit").Inc()
			c.Close()
			continue
		}
		conns.Store(c, nil)
		s.metrics.tcpConns.Inc()
		wg.Go(func() {
			defer func() {
				c.Close()
				conns.Delete(c)
				s.metrics.tcpConns.Dec()
				<-slots
			}()
			s.serveConn(ctx, c)
		})
	}
}

// serveConn answers up to Limits.TCPMaxQueries queries on c, one at a time, closing it
// after Limits.TCPIdleTimeout without a query.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	from, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var lenBuf [2]byte
	pkt := make([]byte, 0, 512)
	for range max(1, s.cfg.Limits.TCPMaxQueries) {
		c.SetReadDeadline(time.Now().Add(s.cfg.Limits.TCPIdleTimeout))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n < 12 {
			s.metrics.dropped.WithLabelValues("malformed").Inc()
			return
		}
		pkt = append(pkt[:0], make([]byte, n)...)
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		resp, r := s.answer(pkt, from.Addr(), true, nil)
		if r != nil {
			resp = s.resolve(ctx, r, nil)
			putRequest(r)
		}
		if resp == nil {
			continue
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		c.SetWriteDeadline(time.Now().Add(s.cfg.Limits.TCPIdleTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// housekeeping runs the timed work: upstream health checks, list change polls and the
// blocked-query events.
func (s *Server) housekeeping(ctx context.Context) {
	healthT := s.clock.NewTicker(positive(s.cfg.HealthInterval, 15*time.Second))
	defer healthT.Stop()
	reloadT := s.clock.NewTicker(positive(s.cfg.ReloadInterval, 5*time.Second))
	defer reloadT.Stop()
	eventT := s.clock.NewTicker(positive(s.cfg.QueryLog.EventWindow, time.Minute))
	defer eventT.Stop()
	s.fwd.check(ctx)
	s.Health() // set the upstream gauges
	for {
		select {
		case <-ctx.Done():
			s.flushEvents()
			return
		case <-reloadT.C():
			if !s.policy.Load().changed() {
				continue
			}
			if err := s.Reload(); err != nil { // Health reports it too
				s.log.Error("resolver: lists changed on disk; the bad ones keep their previous version", "err", err)
			}
		case <-healthT.C():
			s.fwd.check(ctx)
			s.Health()
		case <-eventT.C():
			s.flushEvents()
		}
	}
}

func positive(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// flushEvents hands the blocked bursts of the past window to the event sink.
func (s *Server) flushEvents() {
	bursts, lost := s.qlog.takeBursts()
	if lost > 0 {
		s.log.Warn("resolver: blocked-query bursts not reported, table full", "lost", lost)
	}
	sink := s.hooks.eventSink()
	if sink == nil {
		return
	}
	for _, b := range bursts {
		b.Asset = s.hooks.assetName(b.Client)
		sink.Blocked(b)
		s.metrics.events.Inc()
	}
}
