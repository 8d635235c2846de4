package resolver

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Entry is one query in the query log.
type Entry struct {
	Time     time.Time     `json:"time"`
	Client   netip.Addr    `json:"client"`
	Asset    string        `json:"asset,omitempty"` // filled in when read
	Segment  string        `json:"segment,omitempty"`
	Name     string        `json:"name"`
	Type     string        `json:"type"`
	Decision Decision      `json:"decision"`
	Reason   string        `json:"reason,omitempty"`
	Rcode    string        `json:"rcode"`
	Latency  time.Duration `json:"latency_ns"`
	Cached   bool          `json:"cached,omitempty"`
	// Rebinding: site addresses were dropped from the answer of a public name.
	Rebinding bool `json:"rebinding,omitempty"`
}

// Who is the asset name when known, else the client address.
func (e Entry) Who() string { return who(e.Asset, e.Client) }

// who names a client by its asset name when known, else by its address.
func who(asset string, client netip.Addr) string {
	if asset != "" {
		return asset
	}
	return client.String()
}

// Bounds of the blocked-name statistics and the burst table.
const (
	maxBlockedNames   = 512
	maxClientsPerName = 16
	maxBursts         = 4096
)

// queryLog keeps the recent queries in a ring, counts blocked names and the devices
// asking, gathers blocked bursts for the event sink, and writes query lines to the log
// at a bounded rate. It is safe for concurrent use.
type queryLog struct {
	log     *slog.Logger
	mode    string // none, blocked, all
	limiter *rate.Limiter

	mu         sync.Mutex
	ring       []Entry
	next       int
	full       bool
	blocked    map[string]*blockedName
	bursts     map[burstKey]*BlockedBurst
	burstsLost int
	suppressed int
}

type blockedName struct {
	count   int
	last    time.Time
	clients map[netip.Addr]int
}

type burstKey struct {
	client netip.Addr
	name   string
}

func newQueryLog(cfg QueryLogConfig, log *slog.Logger) *queryLog {
	l := &queryLog{
		log:     log,
		mode:    cfg.Log,
		ring:    make([]Entry, cfg.Ring),
		blocked: map[string]*blockedName{},
		bursts:  map[burstKey]*BlockedBurst{},
	}
	if cfg.LogRate > 0 {
		l.limiter = rate.NewLimiter(rate.Limit(cfg.LogRate), max(1, int(cfg.LogRate)))
	}
	return l
}

// add records one query. Entries of blocked queries also count toward the blocked-name
// statistics and the current burst of their (client, name).
func (l *queryLog) add(e Entry) {
	// A rebinding attempt is always logged (at the same bounded rate) and reported.
	writeLine := l.mode == "all" || (l.mode == "blocked" && (e.Decision == Blocked || e.Decision == Refused)) || e.Rebinding
	l.mu.Lock()
	if len(l.ring) > 0 {
		l.ring[l.next] = e
		l.next = (l.next + 1) % len(l.ring)
		l.full = l.full || l.next == 0
	}
	if e.Decision == Blocked || e.Rebinding {
		l.countBlocked(e)
	}
	suppressed := 0
	if writeLine {
		if l.limiter == nil || !l.limiter.AllowN(e.Time, 1) {
			l.suppressed++
			writeLine = false
		} else {
			suppressed, l.suppressed = l.suppressed, 0
		}
	}
	l.mu.Unlock()
	if writeLine {
		attrs := []any{"client", e.Client.String(), "segment", e.Segment, "name", e.Name, "type", e.Type,
			"decision", e.Decision.String(), "reason", e.Reason, "rcode", e.Rcode, "latency", e.Latency.String()}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed_before", suppressed)
		}
		level := slog.LevelInfo
		if e.Rebinding {
			level = slog.LevelWarn
		}
		l.log.Log(context.Background(), level, "dns query", attrs...)
	}
}

// countBlocked is called with mu held.
func (l *queryLog) countBlocked(e Entry) {
	b, ok := l.blocked[e.Name]
	if !ok {
		if len(l.blocked) >= maxBlockedNames {
			// Drop the least asked half; a name blocked often comes back quickly.
			names := make([]string, 0, len(l.blocked))
			for n := range l.blocked {
				names = append(names, n)
			}
			slices.SortFunc(names, func(a, b string) int { return cmp.Compare(l.blocked[a].count, l.blocked[b].count) })
			for _, n := range names[:len(names)/2] {
				delete(l.blocked, n)
			}
		}
		b = &blockedName{clients: map[netip.Addr]int{}}
		l.blocked[e.Name] = b
	}
	b.count++
	b.last = e.Time
	if _, ok := b.clients[e.Client]; ok || len(b.clients) < maxClientsPerName {
		b.clients[e.Client]++
	}

	k := burstKey{e.Client, e.Name}
	if bu, ok := l.bursts[k]; ok {
		bu.Count++
		bu.Last = e.Time
	} else if len(l.bursts) < maxBursts {
		l.bursts[k] = &BlockedBurst{Segment: e.Segment, Client: e.Client, Name: e.Name, Type: e.Type,
			Reason: e.Reason, First: e.Time, Last: e.Time, Count: 1}
	} else {
		l.burstsLost++
	}
}

// takeBursts returns the bursts gathered since the last call, oldest first (then by
// client and name), and how many
// were not kept because the table was full.
func (l *queryLog) takeBursts() ([]BlockedBurst, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]BlockedBurst, 0, len(l.bursts))
	for _, b := range l.bursts {
		out = append(out, *b)
	}
	lost := l.burstsLost
	l.bursts = map[burstKey]*BlockedBurst{}
	l.burstsLost = 0
	slices.SortFunc(out, func(a, b BlockedBurst) int {
		return cmp.Or(a.First.Compare(b.First), a.Client.Compare(b.Client), cmp.Compare(a.Name, b.Name))
	})
	return out, lost
}

// recent returns up to n entries, newest first.
func (l *queryLog) recent(n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.next
	if l.full {
		size = len(l.ring)
	}
	n = min(n, size)
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}

// TopBlocked is a blocked name and the devices that asked for it.
type TopBlocked struct {
	Name    string        `json:"name"`
	Count   int           `json:"count"`
	Last    time.Time     `json:"last"`
	Devices []DeviceCount `json:"devices"`
}

// DeviceCount is how often one device asked.
type DeviceCount struct {
	Client netip.Addr `json:"client"`
	Asset  string     `json:"asset,omitempty"`
	Count  int        `json:"count"`
}

// Who is the asset name when known, else the client address.
func (d DeviceCount) Who() string { return who(d.Asset, d.Client) }

// topBlocked returns the n most asked blocked names, each with its top devices.
func (l *queryLog) topBlocked(n, devices int) []TopBlocked {
	l.mu.Lock()
	out := make([]TopBlocked, 0, len(l.blocked))
	for name, b := range l.blocked {
		t := TopBlocked{Name: name, Count: b.count, Last: b.last}
		for c, k := range b.clients {
			t.Devices = append(t.Devices, DeviceCount{Client: c, Count: k})
		}
		out = append(out, t)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b TopBlocked) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	out = out[:min(n, len(out))]
	for i := range out {
		d := out[i].Devices
		slices.SortFunc(d, func(a, b DeviceCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), a.Client.Compare(b.Client))
		})
		out[i].Devices = d[:min(devices, len(d))]
	}
	return out
}
