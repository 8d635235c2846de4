package resolver

import (
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cacheKey identifies a cached upstream answer. Only class IN is served, so it is not
// part of the key.
type cacheKey struct {
	name  string // canonical
	qtype uint16
	do    bool // DNSSEC OK: answers with signatures are cached apart
}

// cacheEntry is one upstream answer with every TTL already clamped.
type cacheEntry struct {
	msg        *dns.Msg // never modified once stored
	stored     time.Time
	expires    time.Time
	hits       int
	prefetched bool // a refresh is under way or done for this entry

	// aged is msg with its TTLs counted down by agedBy seconds, made by the first hit
	// of each second and shared by the others, never modified either.
	aged   *dns.Msg
	agedBy uint32
}

// answerCache keeps upstream answers for their TTL (clamped to [min, max]; negative
// answers to at most negTTL). It is safe for concurrent use.
type answerCache struct {
	mu     sync.Mutex
	m      map[cacheKey]*cacheEntry
	size   int
	min    time.Duration
	max    time.Duration
	negTTL time.Duration
}

func newAnswerCache(cfg CacheConfig) *answerCache {
	return &answerCache{m: make(map[cacheKey]*cacheEntry), size: cfg.Size, min: cfg.MinTTL, max: cfg.MaxTTL, negTTL: cfg.NegativeTTL}
}

// hit is what get returns: the answer with TTLs counted down, and whether it is due for
// a prefetch.
type hit struct {
	msg      *dns.Msg
	prefetch bool
}

// get returns the cached answer with its TTLs reduced by its age in whole seconds. The
// message is shared (by every hit within the same second): callers must not modify it.
// prefetchHits > 0 marks the entry for prefetch once it has been asked that often and
// less than a tenth of its lifetime is left (then only the first caller gets prefetch
// true).
func (c *answerCache) get(k cacheKey, now time.Time, prefetchHits int) (hit, bool) {
	if c.size == 0 {
		return hit{}, false
	}
	c.mu.Lock()
	e, ok := c.m[k]
	if !ok {
		c.mu.Unlock()
		return hit{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		c.mu.Unlock()
		return hit{}, false
	}
	e.hits++
	life := e.expires.Sub(e.stored)
	left := e.expires.Sub(now)
	h := hit{}
	if prefetchHits > 0 && !e.prefetched && e.hits >= prefetchHits && left*10 < life {
		e.prefetched = true
		h.prefetch = true
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	if e.aged != nil && e.agedBy == age {
		h.msg = e.aged
		c.mu.Unlock()
		return h, true
	}
	msg := e.msg
	c.mu.Unlock()

	h.msg = aged(msg, age)
	c.mu.Lock()
	if c.m[k] == e { // not replaced meanwhile
		e.aged, e.agedBy = h.msg, age
	}
	c.mu.Unlock()
	return h, true
}

// aged returns a copy of m with every TTL (but the OPT record's) reduced by age seconds,
// down to 0; m itself when age is 0.
func aged(m *dns.Msg, age uint32) *dns.Msg {
	if age == 0 {
		return m
	}
	m = m.Copy()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			hdr := rr.Header()
			if hdr.Rrtype == dns.TypeOPT {
				continue
			}
			if hdr.Ttl > age {
				hdr.Ttl -= age
			} else {
				hdr.Ttl = 0
			}
		}
	}
	return m
}

// put stores an upstream answer if it is cacheable: NOERROR with answers (for their
// smallest TTL), or NXDOMAIN/NODATA with an SOA (for the SOA's negative TTL). It returns
// the answer as stored, its TTLs clamped, or m itself when not stored.
func (c *answerCache) put(k cacheKey, m *dns.Msg, now time.Time) *dns.Msg {
	if c.size == 0 || m.Truncated {
		return m
	}
	orig := m
	m = m.Copy()
	var life time.Duration
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		life = c.clampAll(m, c.min, c.max)
	case m.Rcode == dns.RcodeNameError || (m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0):
		var soa *dns.SOA
		for _, rr := range m.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
			}
		}
		if soa == nil {
			return orig
		}
		// RFC 2308: the negative TTL is the smaller of the SOA's TTL and its minimum.
		soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
		life = c.clampAll(m, 0, c.negTTL)
	default:
		return orig
	}
	if life <= 0 {
		return orig
	}
	c.store(k, &cacheEntry{msg: m, stored: now, expires: now.Add(life)}, now)
	return m
}

// store puts e under k, evicting an entry when the cache is full.
func (c *answerCache) store(k cacheKey, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		c.evict(now)
	}
	c.m[k] = e
}

// badAnswerTTL is how long a bad upstream answer (errBadAnswer) is remembered as
// SERVFAIL, at most the negative TTL, so that clients retrying a CNAME loop do not send
// every retry upstream (RFC 2308 section 7 allows up to 5 minutes).
const badAnswerTTL = 30 * time.Second

// putFailure remembers that the upstream answer for k could not be served: get returns
// a SERVFAIL without records for min(badAnswerTTL, negative TTL).
func (c *answerCache) putFailure(k cacheKey, question []dns.Question, now time.Time) {
	life := min(badAnswerTTL, c.negTTL)
	if c.size == 0 || life <= 0 {
		return
	}
	m := new(dns.Msg)
	m.Response, m.Rcode, m.Question = true, dns.RcodeServerFailure, question
	c.store(k, &cacheEntry{msg: m, stored: now, expires: now.Add(life), prefetched: true}, now)
}

// clampAll clamps every TTL of m to [lo, hi] (whole seconds) and returns the smallest.
func (c *answerCache) clampAll(m *dns.Msg, lo, hi time.Duration) time.Duration {
	least := hi
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			hdr := rr.Header()
			if hdr.Rrtype == dns.TypeOPT {
				continue
			}
			ttl := min(max(time.Duration(hdr.Ttl)*time.Second, lo), hi)
			hdr.Ttl = uint32(ttl / time.Second)
			least = min(least, ttl)
		}
	}
	return least
}

// evict makes room for one entry: expired entries among a few looked at, else one of
// them. Go's map iteration order is random, so this is random eviction. Called with mu.
func (c *answerCache) evict(now time.Time) {
	n := 0
	var victim cacheKey
	removed := false
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
			removed = true
		} else if n == 0 {
			victim = k
		}
		if n++; n >= 16 {
			break
		}
	}
	if !removed {
		delete(c.m, victim)
	}
}

// len is the number of entries, expired ones included.
func (c *answerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// flush drops every entry.
func (c *answerCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
