package resolver

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// request is one query on its way to an answer.
type request struct {
	msg      *dns.Msg
	client   netip.Addr
	seg      *segPolicy
	name     string // canonical
	qtype    uint16
	do       bool
	edns     bool
	tcp      bool
	maxSize  int // UDP answers are truncated to this
	start    time.Time
	decision Decision
	reason   string
	cached   bool
}

func (r *request) key() cacheKey { return cacheKey{name: r.name, qtype: r.qtype, do: r.do} }

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
	r := &request{msg: new(dns.Msg), client: from, seg: seg, tcp: tcp, maxSize: dns.MinMsgSize, start: now}
	if err := r.msg.Unpack(pkt); err != nil {
		if seg == nil {
			s.metrics.dropped.WithLabelValues("malformed").Inc()
			return nil, nil
		}
		// Answer FORMERR with the header only: the ID and opcode are all we trust.
		m := new(dns.Msg)
		m.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
		m.Response = true
		m.Opcode = int(pkt[2]>>3) & 0xF
		m.Rcode = dns.RcodeFormatError
		r.msg = &dns.Msg{MsgHdr: m.MsgHdr}
		r.decision, r.reason = Refused, "malformed"
		return s.finish(r, m, buf), nil
	}
	if opt := r.msg.IsEdns0(); opt != nil {
		r.edns, r.do = true, opt.Do()
		r.maxSize = max(dns.MinMsgSize, min(int(opt.UDPSize()), s.udpSize))
		if opt.Version() != 0 {
			r.decision, r.reason = Refused, "edns version"
			return s.local(r, dns.RcodeBadVers, buf), nil
		}
	}
	if len(r.msg.Question) == 1 {
		q := r.msg.Question[0]
		r.name, r.qtype = canonical(q.Name), q.Qtype
	}
	switch {
	case r.msg.Opcode != dns.OpcodeQuery:
		r.decision, r.reason = Refused, "opcode "+opcodeName(r.msg.Opcode)
		return s.local(r, dns.RcodeNotImplemented, buf), nil
	case len(r.msg.Question) != 1:
		r.decision, r.reason = Refused, "question count "+strconv.Itoa(len(r.msg.Question))
		return s.local(r, dns.RcodeFormatError, buf), nil
	case seg == nil:
		r.decision, r.reason = Refused, "client in no segment"
		return s.local(r, dns.RcodeRefused, buf), nil
	case !s.limiter.allow(from, now):
		r.decision, r.reason = Refused, "rate limited"
		return s.local(r, dns.RcodeRefused, buf), nil
	case r.msg.Question[0].Qclass != dns.ClassINET:
		r.decision, r.reason = Refused, "class "+dns.Class(r.msg.Question[0].Qclass).String()
		return s.local(r, dns.RcodeRefused, buf), nil
	case r.qtype == dns.TypeAXFR || r.qtype == dns.TypeIXFR || r.qtype == dns.TypeOPT ||
		r.qtype == dns.TypeMAILA || r.qtype == dns.TypeMAILB:
		r.decision, r.reason = Refused, "query type "+dns.Type(r.qtype).String()
		return s.local(r, dns.RcodeNotImplemented, buf), nil
	}

	r.decision, r.reason = seg.decide(r.name)
	switch r.decision {
	case Rewritten:
		return s.rewritten(r, buf), nil
	case Blocked:
		return s.blocked(r, buf), nil
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
		return s.allowed(r, h.msg, buf), nil
	}
	s.metrics.cacheMisses.Inc()
	return nil, r
}

// local answers r with rcode and no records.
func (s *Server) local(r *request, rcode int, buf []byte) []byte {
	return s.finish(r, s.reply(r, rcode), buf)
}

// reply starts an answer to r: its ID, opcode, flags and question (in the client's case).
func (s *Server) reply(r *request, rcode int) *dns.Msg {
	m := new(dns.Msg)
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
	m := s.reply(r, dns.RcodeSuccess)
	m.Authoritative = true
	s.addresses(r, m, r.seg.rewriteA, r.seg.rewriteAAAA)
	return s.finish(r, m, buf)
}

// blocked answers a blocked name the segment's way.
func (s *Server) blocked(r *request, buf []byte) []byte {
	var m *dns.Msg
	switch r.seg.blockedAnswer {
	case AnswerRefused:
		m = s.reply(r, dns.RcodeRefused)
	case AnswerNoData:
		m = s.reply(r, dns.RcodeSuccess)
		m.Ns = []dns.RR{s.soa(r.name)}
	case AnswerSinkhole:
		m = s.reply(r, dns.RcodeSuccess)
		s.addresses(r, m, r.seg.sinkholeA, r.seg.sinkholeAAAA)
	default:
		m = s.reply(r, dns.RcodeNameError)
		m.Ns = []dns.RR{s.soa(r.name)}
	}
	if r.name == canaryName { // always NXDOMAIN, whatever the segment's blocked answer
		m = s.reply(r, dns.RcodeNameError)
		m.Ns = []dns.RR{s.soa(r.name)}
	}
	m.Authoritative = m.Rcode != dns.RcodeRefused
	return s.finish(r, m, buf)
}

// addresses puts v4 or v6 (as the query type asks) into m's answer, or an SOA for NODATA.
func (s *Server) addresses(r *request, m *dns.Msg, v4, v6 []netip.Addr) {
	owner := r.msg.Question[0].Name
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: s.localTTL}
	}
	switch {
	case r.qtype == dns.TypeA && len(v4) > 0:
		for _, a := range v4 {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
		}
	case r.qtype == dns.TypeAAAA && len(v6) > 0:
		for _, a := range v6 {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	default:
		m.Ns = []dns.RR{s.soa(r.name)}
	}
}

// soa is the SOA that negative answers made here carry, so that clients cache them for
// LocalTTL (RFC 2308). Its owner is the parent of the name (the name itself when it has
// one label): an NXDOMAIN name cannot be its own zone's apex.
func (s *Server) soa(name string) *dns.SOA {
	zone := name
	if i := strings.IndexByte(name, '.'); i >= 0 && i < len(name)-1 {
		zone = name[i+1:]
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: dns.Fqdn(zone), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.localTTL},
		Ns:      "patchgate.invalid.",
		Mbox:    "hostmaster.patchgate.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  s.localTTL,
	}
}

// allowed answers r from an upstream (or cached) answer: the CNAME chain is checked
// against the segment's policy, records off the chain and the additional section are
// dropped, and the answer sink learns the addresses.
func (s *Server) allowed(r *request, up *dns.Msg, buf []byte) []byte {
	chain := []string{r.name}
	cur := r.name
	for range len(up.Answer) {
		next := ""
		for _, rr := range up.Answer {
			if c, ok := rr.(*dns.CNAME); ok && canonical(c.Hdr.Name) == cur {
				next = canonical(c.Target)
				break
			}
		}
		if next == "" || containsName(chain, next) {
			break
		}
		if ok, why := r.seg.targetAllowed(next); !ok {
			r.decision, r.reason = Blocked, why
			return s.blocked(r, buf)
		}
		chain = append(chain, next)
		cur = next
	}
	m := s.reply(r, up.Rcode)
	m.AuthenticatedData = up.AuthenticatedData && (r.do || r.msg.AuthenticatedData)
	var addrs []netip.Addr
	var ttl uint32
	for _, rr := range up.Answer {
		hdr := rr.Header()
		if !containsName(chain, canonical(hdr.Name)) {
			continue
		}
		m.Answer = append(m.Answer, rr)
		var a netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(v.AAAA)
		default:
			continue
		}
		if a.IsValid() {
			if len(addrs) == 0 || hdr.Ttl < ttl {
				ttl = hdr.Ttl
			}
			addrs = append(addrs, a)
		}
	}
	m.Ns = up.Ns
	if len(addrs) > 0 {
		if sink := s.hooks.answerSink(); sink != nil {
			sink.Learned(r.seg.name, r.name, addrs, time.Duration(ttl)*time.Second)
		}
	}
	return s.finish(r, m, buf)
}

func containsName(chain []string, n string) bool {
	for _, c := range chain {
		if c == n {
			return true
		}
	}
	return false
}

// finish adds the OPT record the client's EDNS asks for, truncates UDP answers to the
// client's size (never TCP ones), packs into buf, and records the query.
func (s *Server) finish(r *request, m *dns.Msg, buf []byte) []byte {
	if r.edns {
		m.SetEdns0(uint16(s.udpSize), r.do) // Pack moves an extended rcode into it
	}
	if r.tcp {
		m.Compress = true
	} else {
		m.Truncate(r.maxSize)
	}
	out, err := m.PackBuffer(buf)
	if err != nil {
		// Only a bug or an upstream answer too large even for TCP gets here.
		fail := s.reply(r, dns.RcodeServerFailure)
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
