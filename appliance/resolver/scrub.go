package resolver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// maxChainLinks is how many CNAME and DNAME links the chain of an answer may have:
// Unbound's restart limit (MAX_RESTART_COUNT). A longer chain is a bad answer.
const maxChainLinks = 11

// errBadAnswer marks an upstream answer that arrived but cannot be served: a CNAME loop,
// a chain longer than maxChainLinks, or a DNAME whose synthesized name is too long.
var errBadAnswer = errors.New("bad upstream answer")

// scrub returns what may be served and cached of up, the upstream's answer to (name,
// qtype), name canonical, as a careful resolver keeps it (bailiwick):
//
//   - the answer section is the chain from name: each link's CNAME, or the DNAME that
//     applies with its CNAME (synthesized here when the upstream left it out or sent
//     another), then the records of qtype at the chain's last name; with do, the
//     RRSIGs of those. Everything else (records of other names, other types, a second
//     CNAME at one name) is dropped. A chain that comes back to one of its names, or has
//     more than maxChainLinks links, is errBadAnswer. CNAME and DNAME queries follow no
//     chain: they get the records of their type at name.
//   - the authority section keeps only, for a negative answer (NXDOMAIN, or no record
//     of qtype at the chain's end), the SOA of a zone at or above the chain's last name
//     and, with do, its RRSIGs and the NSEC/NSEC3 records (and their RRSIGs) inside
//     that zone. Positive answers get an empty authority section.
//   - the additional section keeps only the OPT record.
//
// up is not modified; the returned message shares its records.
func scrub(name string, qtype uint16, do bool, up *dns.Msg) (*dns.Msg, error) {
	out := new(dns.Msg)
	out.MsgHdr = up.MsgHdr
	out.Compress = up.Compress
	out.Question = up.Question

	chain := []string{name}
	cur := name
	if qtype != dns.TypeCNAME && qtype != dns.TypeDNAME {
		for {
			links, next, err := nextLink(up.Answer, cur)
			if err != nil {
				return nil, err
			}
			if links == nil {
				break
			}
			if containsName(chain, next) {
				return nil, fmt.Errorf("%w: CNAME loop at %s", errBadAnswer, next)
			}
			if len(chain) > maxChainLinks {
				return nil, fmt.Errorf("%w: chain from %s longer than %d links", errBadAnswer, name, maxChainLinks)
			}
			for _, l := range links {
				out.Answer = append(out.Answer, l)
				if do {
					out.Answer = appendSigs(out.Answer, up.Answer, l.Header().Name, l.Header().Rrtype)
				}
			}
			chain = append(chain, next)
			cur = next
		}
	}
	final := 0
	for _, rr := range up.Answer {
		hdr := rr.Header()
		if !sameName(hdr.Name, cur) {
			continue
		}
		switch {
		case hdr.Rrtype == qtype, qtype == dns.TypeANY:
		case do && hdr.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == qtype:
		default:
			continue
		}
		out.Answer = append(out.Answer, rr)
		final++
	}

	if up.Rcode == dns.RcodeNameError || final == 0 {
		out.Ns = negativeAuthority(up.Ns, cur, do)
	}
	for _, rr := range up.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			out.Extra = append(out.Extra, rr)
		}
	}
	return out, nil
}

// nextLink finds the link of the chain at cur in answer: the DNAME of the closest
// ancestor of cur and the CNAME it synthesizes (the upstream's when it has the same
// target, else one made here with the DNAME's TTL), or else the first CNAME at cur. It
// returns nil links at the end of the chain, and the next name in canonical form.
func nextLink(answer []dns.RR, cur string) (links []dns.RR, next string, err error) {
	var dname *dns.DNAME
	owner := ""
	for _, rr := range answer {
		d, ok := rr.(*dns.DNAME)
		if !ok {
			continue
		}
		o := canonical(d.Hdr.Name)
		if o != cur && isBelow(cur, o) && (dname == nil || len(o) > len(owner)) {
			dname, owner = d, o
		}
	}
	if dname != nil {
		target := canonical(dname.Target)
		next = strings.TrimSuffix(strings.TrimSuffix(cur, owner), ".")
		if target != "" {
			next += "." + target
		}
		if len(next)+2 > 255 {
			return nil, "", fmt.Errorf("%w: DNAME %s makes a name too long", errBadAnswer, dname.Hdr.Name)
		}
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && sameName(c.Hdr.Name, cur) && sameName(c.Target, next) {
				return []dns.RR{dname, c}, next, nil
			}
		}
		synth := &dns.CNAME{Hdr: dns.RR_Header{Name: dns.Fqdn(cur), Rrtype: dns.TypeCNAME, Class: dns.ClassINET,
			Ttl: dname.Hdr.Ttl}, Target: dns.Fqdn(next)}
		return []dns.RR{dname, synth}, next, nil
	}
	for _, rr := range answer {
		if c, ok := rr.(*dns.CNAME); ok && sameName(c.Hdr.Name, cur) {
			return []dns.RR{c}, canonical(c.Target), nil
		}
	}
	return nil, "", nil
}

// negativeAuthority keeps, of a negative answer's authority section, the first SOA of
// a zone at or above last and, with do, the DNSSEC records of that zone that prove the
// answer (RRSIG of the SOA, NSEC and NSEC3 records inside the zone and their RRSIGs).
func negativeAuthority(ns []dns.RR, last string, do bool) []dns.RR {
	var soa *dns.SOA
	for _, rr := range ns {
		if s, ok := rr.(*dns.SOA); ok && isBelow(last, canonical(s.Hdr.Name)) {
			soa = s
			break
		}
	}
	if soa == nil {
		return nil
	}
	out := []dns.RR{soa}
	if !do {
		return out
	}
	zone := canonical(soa.Hdr.Name)
	for _, rr := range ns {
		hdr := rr.Header()
		if rr == dns.RR(soa) || !isBelow(canonical(hdr.Name), zone) {
			continue
		}
		switch hdr.Rrtype {
		case dns.TypeNSEC, dns.TypeNSEC3:
		case dns.TypeRRSIG:
			switch rr.(*dns.RRSIG).TypeCovered {
			case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3:
			default:
				continue
			}
		default:
			continue
		}
		out = append(out, rr)
	}
	return out
}

// appendSigs appends to dst the RRSIGs in src at owner covering rrtype.
func appendSigs(dst, src []dns.RR, owner string, rrtype uint16) []dns.RR {
	for _, rr := range src {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == rrtype && strings.EqualFold(sig.Hdr.Name, owner) {
			dst = append(dst, rr)
		}
	}
	return dst
}

// isBelow reports whether name is zone or below it (both canonical; "" is the root).
func isBelow(name, zone string) bool {
	if zone == "" {
		return true
	}
	return name == zone || (len(name) > len(zone) && strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.')
}
