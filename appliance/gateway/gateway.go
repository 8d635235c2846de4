package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
)

// Namer names the device at an address, for the deny log and the status panel; the
// inventory implements it. NameOf returns "" for an unknown address and must be safe
// for concurrent use.
type Namer interface {
	NameOf(addr netip.Addr) string
}

// Options are what a Gateway needs besides its Policy.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Clock    clock.Clock
	// Names names devices in the deny log; nil logs addresses only (see SetNamer).
	Names Namer
	// NetNS, when not 0, is a file descriptor of the network namespace to program
	// (tests); 0 is the process's own namespace.
	NetNS int
}

// learnWait bounds how long Learned waits for its addresses to reach the kernel.
const learnWait = 250 * time.Millisecond

// Gateway keeps the nftables table in place and feeds its learned sets. Build it with
// New, call Run once (Run applies the ruleset, taking over the learned addresses of a
// table a previous run left, keeps it current, and leaves it in place when it returns
// unless the policy opens on stop). Its methods are safe for concurrent use;
// Learned may be called before Run (its addresses are written when the ruleset is
// applied).
type Gateway struct {
	log     *slog.Logger
	clock   clock.Clock
	netns   int
	names   atomic.Pointer[Namer]
	metrics *metrics

	nlMu   sync.Mutex     // one netlink batch at a time
	nl     *nftables.Conn // lasting connection for learned-address batches
	kick   chan struct{}  // Learned has pending elements
	hosts  chan struct{}  // the egress host names changed
	repair chan struct{}  // the table must be applied again
	wg     sync.WaitGroup // Run's helpers

	mu        sync.Mutex
	policy    Policy
	rs        *Ruleset
	running   bool
	applied   bool
	appliedAt time.Time
	applyErr  error
	learnErr  error
	lookupErr error
	logErr    error
	repaired  int                      // times the table was found missing and re-applied
	learned   map[elemKey]time.Time    // every live learned element and its expiry
	written   map[elemKey]time.Time    // the expiry last written to the kernel
	pending   map[elemKey]struct{}     // learned entries not yet written
	pendGen   uint64                   // bumped by each Learned that added to pending
	doneGen   uint64                   // pendGen as of the last completed write
	flushed   chan struct{}            // closed (and replaced) when doneGen moves
	recent    [recentDenied]deniedFlow // a ring of the latest denied flows
	nrecent   int                      // flows ever put in recent
}

// elemKey is a learned set's element: the destination, and in a segment's set the
// device that asked.
type elemKey struct {
	set  string
	src  netip.Addr // invalid in the appliance's own sets
	addr netip.Addr
}

// New checks that nftables can be programmed (CAP_NET_ADMIN) and returns a Gateway
// that enforces p once Run.
func New(p Policy, o Options) (*Gateway, error) {
	defaults.Fill(&o.Clock, &o.Logger, &o.Registry)
	g := &Gateway{
		log:     o.Logger,
		clock:   o.Clock,
		netns:   o.NetNS,
		kick:    make(chan struct{}, 1),
		hosts:   make(chan struct{}, 1),
		repair:  make(chan struct{}, 1),
		policy:  p,
		learned: map[elemKey]time.Time{},
		written: map[elemKey]time.Time{},
		pending: map[elemKey]struct{}{},
		flushed: make(chan struct{}),
	}
	if o.Names != nil {
		g.SetNamer(o.Names)
	}
	// Probe: listing tables needs CAP_NET_ADMIN like every nf_tables request.
	if _, err := g.conn().ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return nil, fmt.Errorf("gateway: %w", explain(err))
	}
	nl, err := nftables.New(g.connOpts(nftables.AsLasting())...)
	if err != nil {
		return nil, fmt.Errorf("gateway: netlink: %w", explain(err))
	}
	g.nl = nl
	m, err := newMetrics(o.Registry)
	if err != nil {
		nl.CloseLasting()
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g.metrics = m
	return g, nil
}

// explain turns EPERM into the sentence an admin needs.
func explain(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("programming nftables needs CAP_NET_ADMIN (run patchgate as root or with AmbientCapabilities=CAP_NET_ADMIN, or set gateway.enabled: false): %w", err)
	}
	return err
}

func (g *Gateway) connOpts(extra ...nftables.ConnOption) []nftables.ConnOption {
	extra = append(extra, nftables.WithSockOptions(forceSendBuffer))
	if g.netns != 0 {
		extra = append(extra, nftables.WithNetNSFd(g.netns))
	}
	return extra
}

// conn is a fresh connection: each batch built on it is flushed, or dropped with it.
func (g *Gateway) conn() *nftables.Conn {
	c, _ := nftables.New(g.connOpts()...) // without AsLasting New cannot fail
	return c
}

// SetNamer sets (or with nil clears) the device namer. Safe for concurrent use.
func (g *Gateway) SetNamer(n Namer) { g.names.Store(&n) }

func (g *Gateway) nameOf(a netip.Addr) string {
	if p := g.names.Load(); p != nil && *p != nil {
		return (*p).NameOf(a)
	}
	return ""
}

// Close releases the netlink connection. Call it after Run has returned.
func (g *Gateway) Close() error { return g.nl.CloseLasting() }

// Name implements the appliance's Service.
func (g *Gateway) Name() string { return "gateway" }

// Ready reports whether the ruleset is in place.
func (g *Gateway) Ready() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applied
}

// Health lists the gateway's problems, most serious first.
func (g *Gateway) Health() []health.Problem {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ps []health.Problem
	switch {
	case !g.applied && g.applyErr != nil:
		ps = append(ps, health.Problem{Code: "gateway-not-applied", Severity: health.Error,
			Text: "egress is not enforced: the nftables ruleset could not be applied (retrying): " + g.applyErr.Error()})
	case g.applyErr != nil:
		ps = append(ps, health.Problem{Code: "gateway-reload-failed", Severity: health.Warning,
			Text: "the new nftables ruleset could not be applied; the previous one stays in force: " + g.applyErr.Error()})
	}
	if g.learnErr != nil {
		ps = append(ps, health.Problem{Code: "gateway-learn-failed", Severity: health.Warning,
			Text: "addresses from DNS answers could not be added to the egress sets: " + g.learnErr.Error()})
	}
	if g.lookupErr != nil {
		ps = append(ps, health.Problem{Code: "gateway-egress-lookup", Severity: health.Warning,
			Text: "an egress host name could not be looked up: " + g.lookupErr.Error()})
	}
	if g.logErr != nil {
		ps = append(ps, health.Problem{Code: "gateway-log", Severity: health.Warning,
			Text: "denied flows are counted but not logged: " + g.logErr.Error()})
	}
	return ps
}

// Policy returns the policy in force (or to be applied).
func (g *Gateway) Policy() Policy {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.policy
}

// Reconfigure replaces the policy (a config reload). While Run is running the new
// ruleset is applied at once, atomically, keeping the counters and the learned
// addresses of segments that remain; on error the previous ruleset stays in force.
func (g *Gateway) Reconfigure(p Policy) error {
	g.mu.Lock()
	g.policy = p
	running := g.running
	g.mu.Unlock()
	signal(g.hosts)
	if !running {
		return nil
	}
	return g.apply()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run applies the ruleset (retrying until it succeeds), then writes learned addresses
// as they come, reads the counters for the metrics, repairs the table if someone
// removed it, logs denied flows, and looks up the egress host names. When ctx is done
// it returns nil, leaving the table and its learned addresses in the kernel (the
// segments stay closed while patchgate is down), or removing it if the policy opens
// on stop.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	g.running = true
	p := g.policy
	g.mu.Unlock()
	defer g.stop()

	backoff := time.Second
	var retry <-chan time.Time
	if err := g.apply(); err != nil {
		g.log.Error("gateway: apply ruleset", "err", err)
		retry = g.clock.After(backoff)
	} else {
		g.log.Info("gateway: ruleset applied", "table", "inet "+TableName, "segments", len(p.Segments))
	}
	logCtx, stopLog := context.WithCancel(ctx)
	defer stopLog()
	if p.LogRate > 0 {
		g.startLog(logCtx, p.LogGroup)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.resolveHosts(ctx)
	}()
	stats := g.clock.NewTicker(p.Stats)
	defer stats.Stop()
	var learnRetry <-chan time.Time
	flush := func() {
		if err := g.flushLearned(); err != nil && learnRetry == nil {
			learnRetry = g.clock.After(time.Second)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.kick:
			flush()
		case <-learnRetry:
			learnRetry = nil
			flush()
		case <-stats.C():
			g.readStats()
		case <-g.repair:
			if err := g.apply(); err != nil {
				g.log.Error("gateway: re-apply ruleset", "err", err)
				retry = g.clock.After(backoff)
			}
		case <-retry:
			retry = nil
			if err := g.apply(); err != nil {
				backoff = min(2*backoff, time.Minute)
				retry = g.clock.After(backoff)
				continue
			}
			backoff = time.Second
			g.log.Info("gateway: ruleset applied", "table", "inet "+TableName)
		}
	}
}

// stop ends Run: waits for its helpers, releases waiting Learned calls, and removes
// the table if the policy opens on stop.
func (g *Gateway) stop() {
	g.wg.Wait()
	g.mu.Lock()
	g.running = false
	open := g.policy.OpenOnStop
	g.applied = false
	g.broadcast()
	g.mu.Unlock()
	g.metrics.applied.Set(0)
	if !open {
		g.log.Info("gateway: stopping; the ruleset and its learned addresses stay in place, closed, until patchgate starts again (open_on_stop: false)")
		return
	}
	g.nlMu.Lock()
	defer g.nlMu.Unlock()
	if err := deleteTable(g.conn()); err != nil {
		g.log.Error("gateway: remove table inet "+TableName, "err", explain(err))
		return
	}
	g.log.Info("gateway: ruleset removed", "table", "inet "+TableName)
}

// broadcast wakes the Learned calls waiting for a write. g.mu must be held.
func (g *Gateway) broadcast() {
	close(g.flushed)
	g.flushed = make(chan struct{})
}

// apply replaces the table with the ruleset of the current policy in one batch. The
// learned elements the kernel holds (with the lifetime each has left) are read back
// first and kept, beside those in memory: a re-apply forgets nothing, and the first
// apply takes over what a previous run left in the table.
func (g *Gateway) apply() error {
	g.nlMu.Lock()
	defer g.nlMu.Unlock()
	c := g.conn()
	g.mu.Lock()
	rs := Build(g.policy)
	maxTimeout, first := g.policy.MaxTimeout, g.rs == nil
	g.mu.Unlock()
	counters, err := readCounters(c)
	var inKernel map[string][]element
	switch {
	case err == nil:
		if inKernel, err = readLearned(c, rs, maxTimeout); err != nil {
			g.log.Warn("gateway: could not read the learned addresses back from the kernel; applying those in memory", "err", err)
		}
	case !errors.Is(err, errTableMissing):
		counters = nil // start the counters at zero rather than not apply
	}

	g.mu.Lock()
	now := g.clock.Now()
	adopted := 0
	for set, es := range inKernel {
		for _, e := range es {
			k, exp := elemKey{set, e.src, e.addr}, now.Add(e.timeout)
			if cur, ok := g.learned[k]; !ok || exp.After(cur) {
				g.learned[k] = exp
				adopted++
			}
		}
	}
	learned := map[string][]element{}
	included := map[elemKey]time.Time{}
	for k, exp := range g.learned {
		if _, ok := rs.set(k.set); !ok || !exp.After(now) {
			delete(g.learned, k) // expired, or its segment is gone
			delete(g.pending, k)
			continue
		}
		learned[k.set] = append(learned[k.set], element{k.src, k.addr, lifetime(exp, now)})
		included[k] = exp
	}
	gen := g.pendGen
	g.mu.Unlock()

	err = queueRuleset(c, rs, counters, learned)
	if err == nil {
		err = c.Flush()
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		err = explain(err)
		g.applyErr = err
		g.metrics.applies.WithLabelValues("error").Inc()
		if !g.applied {
			g.metrics.applied.Set(0)
		}
		return fmt.Errorf("gateway: apply ruleset: %w", err)
	}
	if first && adopted > 0 {
		g.log.Info("gateway: took over the learned addresses of the table a previous run left", "elements", adopted)
	}
	g.applied, g.applyErr, g.appliedAt, g.rs = true, nil, now, rs
	g.written = included
	for k := range g.pending {
		if exp, ok := included[k]; ok && g.learned[k] == exp {
			delete(g.pending, k)
		}
	}
	if len(g.pending) > 0 {
		signal(g.kick)
	}
	if gen > g.doneGen {
		g.doneGen = gen
	}
	g.broadcast()
	g.metrics.applies.WithLabelValues("ok").Inc()
	g.metrics.applied.Set(1)
	return nil
}

// lifetime is the timeout to give an element expiring at exp, in whole milliseconds.
func lifetime(exp, now time.Time) time.Duration {
	return max(exp.Sub(now).Truncate(time.Millisecond), time.Millisecond)
}

// Learned records the addresses an allowed DNS answer for segment returned to client
// ("" and no client for the appliance's own look-ups): the client may then connect to
// each of them (on the segment's ports), for ttl plus the grace, at most the policy's
// maximum; no other device of the segment may. A device reaches only addresses of
// the family it asked over (its address of the other family is unknown here).
// Answers for segments the gateway does not route for, or from a client outside the
// segment's subnets, are ignored. It implements the resolver's AnswerSink.
//
// While Run runs, Learned returns once the addresses are in the set (the
// answer can then be sent: the client's connection will pass), or after 250ms at the
// latest (the ruleset not applied yet, or failing). Concurrent calls share one netlink batch; an answer that changes nothing (its
// addresses already there for long enough) returns at once without a batch.
func (g *Gateway) Learned(segment string, client netip.Addr, name string, addrs []netip.Addr, ttl time.Duration) {
	start := g.clock.Now()
	client = client.Unmap()
	g.mu.Lock()
	if segment != "" {
		if s, ok := g.policy.segment(segment); !ok || !s.hasClient(client) {
			g.mu.Unlock()
			g.metrics.ignored.Inc()
			return
		}
	}
	exp := start.Add(g.policy.timeout(ttl))
	// An entry already living until nearly as long needs no write: it stays at least
	// ttl + grace/2, still past the answer's TTL.
	slack := g.policy.Grace / 2
	changed := false
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() {
			continue
		}
		k := elemKey{set: learnedSet(segment, a.Is6()), addr: a}
		if segment != "" {
			if a.Is6() != client.Is6() {
				continue
			}
			k.src = client
		}
		if cur, ok := g.learned[k]; ok && !cur.Before(exp.Add(-slack)) {
			continue
		}
		g.learned[k] = exp
		g.pending[k] = struct{}{}
		changed = true
	}
	if !changed {
		g.mu.Unlock()
		return
	}
	g.pendGen++
	my := g.pendGen
	// Wait also while the first ruleset is being applied: an answer sent then would
	// let the client connect before its address is in.
	wait := g.running
	g.mu.Unlock()
	signal(g.kick)
	if !wait {
		return
	}
	deadline := g.clock.After(learnWait)
	for {
		g.mu.Lock()
		done, ch := g.doneGen >= my || !g.running, g.flushed
		ok := g.learnErr == nil
		g.mu.Unlock()
		if done {
			if ok {
				g.metrics.learnLatency.Observe(g.clock.Now().Sub(start).Seconds())
			}
			return
		}
		select {
		case <-ch:
		case <-deadline:
			g.log.Debug("gateway: answer sent before its addresses reached the set", "segment", segment, "name", name)
			return
		}
	}
}

// flushLearned writes the pending learned addresses in one netlink batch. On error
// they stay pending for the next attempt.
func (g *Gateway) flushLearned() error {
	type batchKey struct {
		set                    string
		v6, perDevice, refresh bool
	}
	type write struct {
		k   elemKey
		exp time.Time
	}
	g.mu.Lock()
	if !g.applied || len(g.pending) == 0 {
		g.mu.Unlock()
		return nil
	}
	now := g.clock.Now()
	gen := g.pendGen
	batches := map[batchKey][]element{}
	var writes []write
	for k := range g.pending {
		delete(g.pending, k)
		exp := g.learned[k]
		if !exp.After(now) {
			continue
		}
		// An element that is (as far as we know) still in the kernel is deleted and
		// added again in the same batch, so its timeout is renewed on every kernel.
		refresh := g.written[k].After(now.Add(time.Second))
		bk := batchKey{k.set, k.addr.Is6(), k.src.IsValid(), refresh}
		batches[bk] = append(batches[bk], element{k.src, k.addr, lifetime(exp, now)})
		writes = append(writes, write{k, exp})
	}
	g.mu.Unlock()

	g.nlMu.Lock()
	queue := func(refresh bool) error {
		for bk, es := range batches {
			s := Set{Name: bk.set, V6: bk.v6, Timeout: true, PerDevice: bk.perDevice}
			if err := queueElements(g.nl, s, refresh && bk.refresh, es); err != nil {
				return err
			}
		}
		return g.nl.Flush()
	}
	err := queue(true)
	if errors.Is(err, unix.ENOENT) {
		// An element thought present had gone (expired just then, or deleted by
		// hand): add without deleting.
		err = queue(false)
	}
	g.nlMu.Unlock()

	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.learnErr = explain(err)
		g.metrics.learnErrors.Inc()
		for _, w := range writes {
			if g.learned[w.k] == w.exp {
				g.pending[w.k] = struct{}{}
			}
		}
		if errors.Is(err, unix.ENOENT) {
			// The set itself is missing: someone removed the table.
			g.applied = false
			signal(g.repair)
		}
	} else {
		g.learnErr = nil
		g.metrics.learnBatches.Observe(float64(len(writes)))
		for _, w := range writes {
			if w.exp.After(g.written[w.k]) {
				g.written[w.k] = w.exp
			}
			seg := ""
			if g.rs != nil {
				if s, ok := g.rs.set(w.k.set); ok {
					seg = s.Segment
				}
			}
			g.metrics.learned.WithLabelValues(seg).Inc()
		}
	}
	if gen > g.doneGen {
		g.doneGen = gen
	}
	g.broadcast()
	if err == nil && len(g.pending) > 0 && g.applied {
		signal(g.kick)
	}
	return err
}

// readStats reads the counters and set sizes for the metrics and the panel, forgets
// expired entries, and notices a table that someone else removed.
func (g *Gateway) readStats() {
	g.mu.Lock()
	rs, applied := g.rs, g.applied
	now := g.clock.Now()
	for k, exp := range g.learned {
		if !exp.After(now) {
			delete(g.learned, k)
			delete(g.written, k)
		}
	}
	g.mu.Unlock()
	if !applied || rs == nil {
		return
	}
	g.nlMu.Lock()
	c := g.conn()
	counters, err := readCounters(c)
	sizes := map[string]int{}
	if err == nil {
		for _, s := range rs.Sets {
			if s.Timeout {
				n, serr := setSize(c, s)
				if serr != nil {
					err = serr
					break
				}
				sizes[s.Name] = n
			}
		}
	}
	g.nlMu.Unlock()
	if errors.Is(err, errTableMissing) {
		g.log.Warn("gateway: table inet " + TableName + " was removed by something else (nft flush ruleset?); applying it again")
		g.mu.Lock()
		g.applied = false
		g.repaired++
		g.mu.Unlock()
		signal(g.repair)
		return
	}
	if err != nil {
		g.log.Warn("gateway: read counters", "err", err)
		return
	}
	var segs []string
	for _, s := range rs.Sets {
		if s.Segment != "" && !s.V6 {
			segs = append(segs, s.Segment)
		}
	}
	g.metrics.setStats(stats{counters: counters, sizes: sizes, sets: rs.Sets, segments: segs})
}
