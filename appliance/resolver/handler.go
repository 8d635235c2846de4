package resolver

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// request is one query on its way to an answer, with room for the answer: requests are
// pooled (getRequest, putRequest), so that a query answered here allocates little more
// than what unpacking it needs.
type request struct {
	msg      dns.Msg // the query
	client   netip.Addr
	seg      *segPolicy
	fqdn     string // the question name in lower case, with the trailing dot
	name     string // canonical: fqdn without the trailing dot
	qtype    uint16
	do       bool
	edns     bool
	tcp      bool
	maxSize  int // UDP answers are truncated to this
	start    time.Time
	decision Decision
	reason   string
	cached   bool
	// rebinding: site addresses were dropped from the answer (rebindingBlocked).
	rebinding bool

	// The query's question and OPT record when unpackQuery parsed it (r.msg refers to
	// them).
	q      [1]dns.Question
	qopt   dns.OPT
	qextra [1]dns.RR

	// The answer being made and its records, reused from one query to the next.
	reply dns.Msg
	opt   dns.OPT
	soa   dns.SOA
	extra [1]dns.RR
	ns    [1]dns.RR
	a     []dns.A
	aaaa  []dns.AAAA
}

func (r *request) key() cacheKey { return cacheKey{name: r.name, qtype: r.qtype, do: r.do} }

var requests = sync.Pool{New: func() any { return new(request) }}

// getRequest returns an empty request, keeping the room its last use made.
func getRequest() *request {
	r := requests.Get().(*request)
	answers := r.reply.Answer
	clear(answers) // no stale records kept alive by the pool
	a, aaaa := r.a[:0], r.aaaa[:0]
	*r = request{}
	r.reply.Answer, r.a, r.aaaa = answers[:0], a, aaaa
	return r
}

// putRequest gives r back once nothing refers to it or to its answer any more (the
// answer has been packed).
func putRequest(r *request) { requests.Put(r) }

// answer is the first half of the request path, run on the goroutine that read the
// packet: it checks the packet, finds the client's segment, applies the rate limit and
// the policy, and answers everything it can without the network (errors, refusals,
// rewrites, blocked names, cache hits), packing into buf. It returns the answer (nil for
// silence) or, for an allowed name not in the cache, a request for resolve. It never
// panics on any input (FuzzRequestPath).
func (s *Server) answer(pkt []byte, from netip.Addr, tcp bool, buf []byte) ([]byte, *request) {
	now := s.clock.Now()
	from = from.Unmap()
	if len(pkt) < 12 {
		s.metrics.dropped.WithLabelValues("malformed").Inc()
		return nil, nil
	}
	if pkt[2]&0x80 != 0 { // QR: a response; answering it could start a loop
		s.metrics.dropped.WithLabelValues("response").Inc()
		return nil, nil
	}
	pol := s.policy.Load()
	seg := pol.segmentOf(from)
	r := getRequest()
	r.client, r.seg, r.tcp, r.maxSize, r.start = from, seg, tcp, dns.MinMsgSize, now
	if resp, forward := s.decide(r, pkt, now, buf); !forward {
		putRequest(r)
		return resp, nil
	}
	return nil, r
}

// decide is answer once r has its client: it returns the answer to pkt, or forward true
// when r needs resolve.
func (s *Server) decide(r *request, pkt []byte, now time.Time, buf []byte) (resp []byte, forward bool) {
	seg := r.seg
	if unpackQuery(&r.msg, pkt, &r.q, &r.qopt, &r.qextra) {
		// the common shape, parsed in r's room (wire.go)
	} else if err := r.msg.Unpack(pkt); err != nil {
		if seg == nil {
			s.metrics.dropped.WithLabelValues("malformed").Inc()
			return nil, false
		}
		// Answer FORMERR with the header only: the ID and opcode are all we trust.
		r.msg = dns.Msg{}
		r.msg.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
		r.msg.Opcode = int(pkt[2]>>3) & 0xF
		m := r.newReply(dns.RcodeFormatError)
		m.RecursionAvailable = false
		r.decision, r.reason = Refused, "malformed"
		return s.finish(r, m, buf), false
	}
	if opt := r.msg.IsEdns0(); opt != nil {
		r.edns, r.do = true, opt.Do()
		r.maxSize = max(dns.MinMsgSize, min(int(opt.UDPSize()), s.udpSize))
		if opt.Version() != 0 {
			r.decision, r.reason = Refused, "edns version"
			return s.local(r, dns.RcodeBadVers, buf), false
		}
	}
	if len(r.msg.Question) == 1 {
		q := r.msg.Question[0]
		r.fqdn, r.qtype = lowerFQDN(q.Name), q.Qtype
		r.name = r.fqdn[:len(r.fqdn)-1]
	}
	switch {
	case r.msg.Opcode != dns.OpcodeQuery:
		r.decision, r.reason = Refused, "opcode "+opcodeName(r.msg.Opcode)
		return s.local(r, dns.RcodeNotImplemented, buf), false
	case len(r.msg.Question) != 1:
		r.decision, r.reason = Refused, "question count "+strconv.Itoa(len(r.msg.Question))
		return s.local(r, dns.RcodeFormatError, buf), false
	case seg == nil:
		r.decision, r.reason = Refused, "client in no segment"
		return s.local(r, dns.RcodeRefused, buf), false
	case !s.limiter.allow(r.client, now):
		r.decision, r.reason = Refused, "rate limited"
		return s.local(r, dns.RcodeRefused, buf), false
	case r.msg.Question[0].Qclass != dns.ClassINET:
		r.decision, r.reason = Refused, "class "+dns.Class(r.msg.Question[0].Qclass).String()
		return s.local(r, dns.RcodeRefused, buf), false
	case r.qtype == dns.TypeAXFR || r.qtype == dns.TypeIXFR || r.qtype == dns.TypeOPT ||
		r.qtype == dns.TypeMAILA || r.qtype == dns.TypeMAILB:
		r.decision, r.reason = Refused, "query type "+dns.Type(r.qtype).String()
		return s.local(r, dns.RcodeNotImplemented, buf), false
	}

	r.decision, r.reason = seg.decide(r.name)
	switch r.decision {
	case Rewritten:
		return s.rewritten(r, buf), false
	case Blocked:
		return s.blocked(r, buf), false
	}
	if h, ok := s.cache.get(r.key(), now, s.prefetchHits); ok {
		s.metrics.cacheHits.Inc()
		if h.prefetch {
			select {
			case s.prefetchCh <- r.key():
			default: // prefetch queue full: the entry expires and is fetched on demand
			}
		}
		r.cached = true
		return s.allowed(r, h.msg, buf), false
	}
	s.metrics.cacheMisses.Inc()
	return nil, true
}

// local answers r with rcode and no records.
func (s *Server) local(r *request, rcode int, buf []byte) []byte {
	return s.finish(r, r.newReply(rcode), buf)
}

// newReply starts the answer to r in r's own room: its ID, opcode, flags and question
// (in the client's case).
func (r *request) newReply(rcode int) *dns.Msg {
	m := &r.reply
	answers := m.Answer[:0]
	*m = dns.Msg{}
	m.Answer = answers
	m.Id = r.msg.Id
	m.Response = true
	m.Opcode = r.msg.Opcode
	m.RecursionDesired = r.msg.RecursionDesired
	m.RecursionAvailable = true
	m.CheckingDisabled = r.msg.CheckingDisabled
	m.Rcode = rcode
	m.Question = r.msg.Question
	return m
}

// rewritten answers a rewritten name with the appliance's addresses of the asked family;
// NODATA for the other family (or none configured) and every other type.
func (s *Server) rewritten(r *request, buf []byte) []byte {
	m := r.newReply(dns.RcodeSuccess)
	m.Authoritative = true
	s.addresses(r, m, r.seg.rewriteA, r.seg.rewriteAAAA)
	return s.finish(r, m, buf)
}

// blocked answers a blocked name the segment's way.
func (s *Server) blocked(r *request, buf []byte) []byte {
	var m *dns.Msg
	switch {
	case r.name == canaryName: // always NXDOMAIN, whatever the segment's blocked answer
		m = r.newReply(dns.RcodeNameError)
		s.negative(r, m)
	case r.seg.blockedAnswer == AnswerRefused:
		m = r.newReply(dns.RcodeRefused)
	case r.seg.blockedAnswer == AnswerNoData:
		m = r.newReply(dns.RcodeSuccess)
		s.negative(r, m)
	case r.seg.blockedAnswer == AnswerSinkhole:
		m = r.newReply(dns.RcodeSuccess)
		s.addresses(r, m, r.seg.sinkholeA, r.seg.sinkholeAAAA)
	default:
		m = r.newReply(dns.RcodeNameError)
		s.negative(r, m)
	}
	m.Authoritative = m.Rcode != dns.RcodeRefused
	return s.finish(r, m, buf)
}

// addresses puts v4 or v6 (as the query type asks) into m's answer, or an SOA for NODATA.
func (s *Server) addresses(r *request, m *dns.Msg, v4, v6 []net.IP) {
	owner := r.msg.Question[0].Name
	hdr := dns.RR_Header{Name: owner, Class: dns.ClassINET, Ttl: s.localTTL}
	switch {
	case r.qtype == dns.TypeA && len(v4) > 0:
		hdr.Rrtype = dns.TypeA
		r.a = appendRecords(m, r.a[:0], v4, func(a net.IP) dns.A { return dns.A{Hdr: hdr, A: a} })
	case r.qtype == dns.TypeAAAA && len(v6) > 0:
		hdr.Rrtype = dns.TypeAAAA
		r.aaaa = appendRecords(m, r.aaaa[:0], v6, func(a net.IP) dns.AAAA { return dns.AAAA{Hdr: hdr, AAAA: a} })
	default:
		s.negative(r, m)
	}
}

// appendRecords makes a record of each address into buf (the request's, reused so
// that answering allocates no records) and adds them to m's answer.
func appendRecords[T any, P interface {
	*T
	dns.RR
}](m *dns.Msg, buf []T, addrs []net.IP, record func(net.IP) T) []T {
	for _, a := range addrs {
		buf = append(buf, record(a))
	}
	for i := range buf {
		m.Answer = append(m.Answer, P(&buf[i]))
	}
	return buf
}

// negative puts into m's authority section the SOA that negative answers made here
// carry, so that clients cache them for LocalTTL (RFC 2308). Its owner is the parent of
// the name (the name itself when it has one label): an NXDOMAIN name cannot be its own
// zone's apex.
func (s *Server) negative(r *request, m *dns.Msg) {
	zone := r.fqdn
	if i := strings.IndexByte(r.name, '.'); i >= 0 && i < len(r.name)-1 {
		zone = r.fqdn[i+1:]
	}
	r.soa = dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.localTTL},
		Ns:      "patchgate.invalid.",
		Mbox:    "hostmaster.patchgate.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  s.localTTL,
	}
	r.ns[0] = &r.soa
	m.Ns = r.ns[:]
}

// allowed answers r from an upstream (or cached) answer that scrub has kept to the
// chain from the query name, and does not modify it: every CNAME target is checked
// against the segment's policy, A/AAAA records with site addresses are dropped unless
// the query name is a private domain (rebinding), and the answer sink learns the
// addresses served. A remembered bad answer (putFailure) is SERVFAIL.
func (s *Server) allowed(r *request, up *dns.Msg, buf []byte) []byte {
	if up.Rcode == dns.RcodeServerFailure {
		r.reason = "bad upstream answer (cached)"
		return s.local(r, dns.RcodeServerFailure, buf)
	}
	for _, rr := range up.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			if ok, why := r.seg.targetAllowed(canonical(c.Target)); !ok {
				r.decision, r.reason = Blocked, why
				return s.blocked(r, buf)
			}
		}
	}
	m := r.newReply(up.Rcode)
	m.AuthenticatedData = up.AuthenticatedData && (r.do || r.msg.AuthenticatedData)
	sink := s.hooks.answerSink()
	var addrs []netip.Addr
	var ttl uint32
	kept, dropped := 0, 0
	var firstDropped netip.Addr
	for _, rr := range up.Answer {
		a := AnswerAddr(rr)
		if a.IsValid() && r.seg.rebind.site(a) && !r.seg.rebind.internal.Match(r.name) {
			if dropped == 0 {
				firstDropped = a
			}
			dropped++
			continue
		}
		m.Answer = append(m.Answer, rr)
		if !a.IsValid() {
			continue
		}
		kept++
		if sink != nil {
			if len(addrs) == 0 || rr.Header().Ttl < ttl {
				ttl = rr.Header().Ttl
			}
			addrs = append(addrs, a)
		}
	}
	m.Ns = up.Ns
	if dropped > 0 {
		s.rebindingBlocked(r, firstDropped, dropped)
		if kept == 0 {
			// Nothing left to reach: NODATA, as a blocked name in a nodata segment.
			r.decision = Blocked
			m = r.newReply(dns.RcodeSuccess)
			m.Authoritative = true
			s.negative(r, m)
			return s.finish(r, m, buf)
		}
	}
	if len(addrs) > 0 {
		sink.Learned(r.seg.name, r.client, r.name, addrs, time.Duration(ttl)*time.Second)
	}
	return s.finish(r, m, buf)
}

// rebindingBlocked counts and records an answer for a public name that pointed to n
// site addresses (first among them): when none is left the query counts as blocked.
// The query log writes it (rate-limited) and reports the device to the event sink.
func (s *Server) rebindingBlocked(r *request, first netip.Addr, n int) {
	s.metrics.rebinding.WithLabelValues(r.seg.name).Inc()
	r.rebinding = true
	r.reason = "rebinding: site address " + first.String() + " for a public name"
	if n > 1 {
		r.reason += " (and " + strconv.Itoa(n-1) + " more)"
	}
}

func containsName(chain []string, n string) bool {
	for _, c := range chain {
		if c == n {
			return true
		}
	}
	return false
}

// sameName reports whether the name n (any case, trailing dot optional) is the
// canonical name c, without allocating.
func sameName(n, c string) bool {
	n = strings.TrimSuffix(n, ".")
	return len(n) == len(c) && strings.EqualFold(n, c)
}

// finish adds the OPT record the client's EDNS asks for, truncates UDP answers to the
// client's size (never TCP ones), packs into buf, and records the query.
func (s *Server) finish(r *request, m *dns.Msg, buf []byte) []byte {
	if r.edns {
		// As m.SetEdns0 does, in r's room. Pack moves an extended rcode into it.
		r.opt = dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		r.opt.SetUDPSize(uint16(s.udpSize))
		r.opt.SetDo(r.do)
		r.extra[0] = &r.opt
		m.Extra = r.extra[:]
	}
	if r.tcp {
		m.Compress = true
	} else {
		m.Truncate(r.maxSize)
	}
	out, err := m.PackBuffer(buf)
	if err != nil {
		// Only a bug or an upstream answer too large even for TCP gets here.
		fail := r.newReply(dns.RcodeServerFailure)
		fail.Question = nil
		if len(r.msg.Question) == 1 {
			fail.Question = r.msg.Question
		}
		out, _ = fail.PackBuffer(buf)
		m = fail
		r.reason = "pack: " + err.Error()
	}
	s.record(r, m.Rcode)
	return out
}

// record counts the query and puts it in the query log.
func (s *Server) record(r *request, rcode int) {
	lat := s.clock.Now().Sub(r.start)
	s.metrics.query(r.decision, rcode, lat.Seconds())
	s.counts[r.decision].Add(1)
	segName := ""
	if r.seg != nil {
		segName = r.seg.name
	}
	rc, ok := dns.RcodeToString[rcode]
	if !ok {
		rc = strconv.Itoa(rcode)
	}
	s.qlog.add(Entry{
		Time: r.start, Client: r.client, Segment: segName, Name: r.name, Type: typeName(r.qtype),
		Decision: r.decision, Reason: r.reason, Rcode: rc, Latency: lat, Cached: r.cached,
		Rebinding: r.rebinding,
	})
}

func typeName(t uint16) string {
	if n, ok := dns.TypeToString[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func opcodeName(o int) string {
	if n, ok := dns.OpcodeToString[o]; ok {
		return n
	}
	return strconv.Itoa(o)
}
