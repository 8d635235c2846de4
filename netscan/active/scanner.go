package active

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/patchgate/patchgate/netscan"
)

// Progress reports how far a scan is. Stage is "discover" or "probe".
type Progress struct {
	Stage string `json:"stage"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// Summary is what a scan did.
type Summary struct {
	Addresses int           `json:"addresses"` // addresses in the subnets
	Excluded  int           `json:"excluded"`  // skipped by an exclusion
	Live      int           `json:"live"`      // hosts found alive
	Packets   int64         `json:"packets"`   // packets charged to the rate caps
	Duration  time.Duration `json:"duration"`  // wall time, in nanoseconds in JSON
}

// Scanner runs active scans. It is safe for concurrent use, but scans share
// the global rate cap, so running them one at a time is the sensible use.
// A scan's goroutines all end before Scan returns.
type Scanner struct {
	cfg    Config
	m      *Metrics
	log    *slog.Logger
	now    func() time.Time
	global *rate.Limiter
}

// New validates cfg and returns a Scanner. m may be shared by scanners of
// one registry. now stamps observations and times scans; pacing uses the
// real clock of golang.org/x/time/rate, since it paces real packets.
func New(cfg Config, m *Metrics, log *slog.Logger, now func() time.Time) (*Scanner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Scanner{
		cfg: cfg, m: m, log: log, now: now,
		global: rate.NewLimiter(rate.Limit(cfg.GlobalRate), globalBurst(cfg.GlobalRate)),
	}, nil
}

// Config returns the scanner's configuration with defaults filled in.
func (s *Scanner) Config() Config { return s.cfg }

// hostBurst is the token bucket depth per host: enough for the largest
// single charge (an HTTP exchange, 6 packets).
const hostBurst = 8

func globalBurst(r float64) int { return max(hostBurst, int(r/50)) }

// host is one target's state during a scan. Only its own goroutine touches
// it after discovery.
type host struct {
	addr netip.Addr
	mac  netscan.MAC
	lim  *rate.Limiter
	open []uint16
}

// scan holds one Scan call's state.
type scan struct {
	*Scanner
	emit     func(netscan.Observation)
	emitMu   sync.Mutex
	progress func(Progress)
	progMu   sync.Mutex
	packets  int64
	pktMu    sync.Mutex
}

// Scan runs one scan: discovery, then the probes of every live host. It
// calls emit for each observation and progress (if not nil) as it goes;
// both are called one at a time, never concurrently. It returns when all is
// done or ctx is canceled (then with ctx's error and the partial summary).
func (s *Scanner) Scan(ctx context.Context, emit func(netscan.Observation), progress func(Progress)) (Summary, error) {
	start := s.now()
	sc := &scan{Scanner: s, emit: emit, progress: progress}
	sum, err := sc.run(ctx)
	sum.Duration = s.now().Sub(start)
	sum.Packets = sc.packets
	result := "ok"
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		result = "canceled"
	case err != nil:
		result = "error"
	}
	s.m.scans.WithLabelValues(result).Inc()
	s.m.duration.Observe(sum.Duration.Seconds())
	if err == nil {
		s.m.live.Set(float64(sum.Live))
	}
	return sum, err
}

func (sc *scan) run(ctx context.Context) (Summary, error) {
	var sum Summary
	addrs := sc.cfg.addresses()
	sum.Addresses = len(addrs)
	self := localAddrs()
	var targets []netip.Addr
	for _, a := range addrs {
		if self[a] {
			continue // the appliance itself
		}
		if sc.cfg.excluded(a) || (sc.cfg.Exclude != nil && sc.cfg.Exclude(a, netscan.MAC{})) {
			sum.Excluded++
			sc.m.excluded.Inc()
			continue
		}
		targets = append(targets, a)
	}
	live, err := sc.discover(ctx, targets)
	if err != nil {
		return sum, err
	}
	// A host whose MAC an Exclude callback rejects is dropped now.
	live = slices.DeleteFunc(live, func(h *host) bool {
		if sc.cfg.Exclude != nil && !h.mac.IsZero() && sc.cfg.Exclude(h.addr, h.mac) {
			sum.Excluded++
			sc.m.excluded.Inc()
			return true
		}
		return false
	})
	sum.Live = len(live)
	if err := sc.probeAll(ctx, live); err != nil {
		return sum, err
	}
	return sum, nil
}

// discover finds the live hosts among targets: ARP on the interfaces' subnets,
// TCP connect elsewhere.
func (sc *scan) discover(ctx context.Context, targets []netip.Addr) ([]*host, error) {
	type link struct {
		ifc   *net.Interface
		srcs  []netip.Prefix
		addrs []netip.Addr
	}
	var links []*link
	if sc.cfg.has(ProbeARP) {
		names := sc.cfg.Interfaces
		if sc.cfg.Interface != "" && !slices.Contains(names, sc.cfg.Interface) {
			names = append([]string{sc.cfg.Interface}, names...)
		}
		for _, name := range names {
			ifc, srcs, err := interfaceInfo(name)
			if err != nil {
				return nil, err
			}
			links = append(links, &link{ifc: ifc, srcs: srcs})
		}
	}
	var routed []netip.Addr
	onLink := 0
	for _, a := range targets {
		i := slices.IndexFunc(links, func(l *link) bool {
			return a.Is4() && slices.ContainsFunc(l.srcs, func(p netip.Prefix) bool { return p.Contains(a) })
		})
		if i < 0 {
			routed = append(routed, a)
			continue
		}
		links[i].addrs = append(links[i].addrs, a)
		onLink++
	}
	total := len(targets)
	sc.report(Progress{Stage: "discover", Total: total})
	var live []*host
	done := 0
	for _, l := range links {
		if len(l.addrs) == 0 {
			continue
		}
		found, err := sc.arpSweep(ctx, l.ifc, l.srcs, l.addrs)
		if err != nil {
			return nil, err
		}
		for _, a := range l.addrs {
			if mac, ok := found[a]; ok {
				h := sc.newHost(a)
				h.mac = mac
				live = append(live, h)
				o := sc.obs(netscan.SourceARPSweep, h)
				o.Interface = l.ifc.Name
				sc.send(o)
			}
		}
		done += len(l.addrs)
		sc.report(Progress{Stage: "discover", Done: done, Total: total})
	}
	if len(routed) > 0 && sc.cfg.has(ProbeTCP) {
		var mu sync.Mutex
		err := sc.each(ctx, routed, func(ctx context.Context, a netip.Addr) {
			h := sc.newHost(a)
			alive := sc.ping(ctx, h)
			mu.Lock()
			defer mu.Unlock()
			done++
			if alive {
				live = append(live, h)
			}
			sc.report(Progress{Stage: "discover", Done: done, Total: total})
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(live, func(a, b *host) int { return a.addr.Compare(b.addr) })
	return live, nil
}

func (sc *scan) newHost(a netip.Addr) *host {
	return &host{addr: a, lim: rate.NewLimiter(rate.Limit(sc.cfg.HostRate), hostBurst)}
}

// probeAll runs the probes of every live host, Concurrency hosts at a time,
// each host's probes one after another.
func (sc *scan) probeAll(ctx context.Context, live []*host) error {
	var mu sync.Mutex
	done := 0
	sc.report(Progress{Stage: "probe", Total: len(live)})
	addrs := make([]netip.Addr, len(live))
	byAddr := map[netip.Addr]*host{}
	for i, h := range live {
		addrs[i] = h.addr
		byAddr[h.addr] = h
	}
	return sc.each(ctx, addrs, func(ctx context.Context, a netip.Addr) {
		sc.probeHost(ctx, byAddr[a])
		mu.Lock()
		done++
		sc.report(Progress{Stage: "probe", Done: done, Total: len(live)})
		mu.Unlock()
	})
}

// each runs f for every address, Concurrency at a time. It returns ctx's
// error if ctx ended first.
func (sc *scan) each(ctx context.Context, addrs []netip.Addr, f func(context.Context, netip.Addr)) error {
	var g errgroup.Group
	g.SetLimit(sc.cfg.Concurrency)
	for _, a := range addrs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { f(ctx, a); return nil })
	}
	g.Wait()
	return ctx.Err()
}

// probeHost runs every probe against one host, one at a time.
func (sc *scan) probeHost(ctx context.Context, h *host) {
	steps := []struct {
		p Probe
		f func(context.Context, *host)
	}{
		{ProbeTCP, sc.probeTCP},
		{ProbeSNMP, sc.probeSNMP},
		{ProbeMDNS, sc.probeMDNS},
		{ProbeSSDP, sc.probeSSDP},
		{ProbeHTTP, sc.probeHTTP},
		{ProbeIPP, sc.probeIPP},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			return
		}
		if sc.cfg.has(st.p) {
			st.f(ctx, h)
		}
	}
}

// charge waits until n more packets to h fit both rate caps.
func (sc *scan) charge(ctx context.Context, h *host, p Probe, n int) error {
	if h != nil {
		if err := h.lim.WaitN(ctx, n); err != nil {
			return err
		}
	}
	if err := sc.global.WaitN(ctx, n); err != nil {
		return err
	}
	sc.pktMu.Lock()
	sc.packets += int64(n)
	sc.pktMu.Unlock()
	sc.m.packets.WithLabelValues(string(p)).Add(float64(n))
	return nil
}

func (sc *scan) obs(src netscan.Source, h *host) netscan.Observation {
	return netscan.Observation{Time: sc.now(), Source: src, Interface: sc.cfg.Interface, MAC: h.mac, Addr: h.addr}
}

// send passes an observation on, one at a time.
func (sc *scan) send(o netscan.Observation) {
	sc.emitMu.Lock()
	defer sc.emitMu.Unlock()
	sc.emit(o)
}

func (sc *scan) report(p Progress) {
	if sc.progress == nil {
		return
	}
	sc.progMu.Lock()
	defer sc.progMu.Unlock()
	sc.progress(p)
}

// interfaceInfo returns the interface and its IPv4 prefixes.
func interfaceInfo(name string) (*net.Interface, []netip.Prefix, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("active: interface %s: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("active: interface %s: %w", name, err)
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
				ones, _ := n.Mask.Size()
				ps = append(ps, netip.PrefixFrom(ip, ones))
			}
		}
	}
	return ifc, ps, nil
}

// localAddrs returns the addresses of this host's interfaces.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out[ip.Unmap()] = true
			}
		}
	}
	return out
}
