package gateway

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TableName is the one nftables table the gateway owns, in the inet family. It never
// reads or changes any other table.
const TableName = "patchgate"

// Ruleset is the whole table as data: its counters, sets and chains. Build makes it
// from a Policy; Text renders it as nft input, and the applier turns the very same
// values into one netlink batch.
type Ruleset struct {
	Counters []string
	Sets     []Set
	Chains   []Chain
}

// Set is a named set of IPv4 or IPv6 addresses: learned ones with per-element
// timeouts (Timeout), or static ranges. A segment's learned set is keyed by the
// device's address and the destination together (PerDevice: type ipv4_addr .
// ipv4_addr), so that a device reaches only what it resolved itself.
type Set struct {
	Name      string
	V6        bool
	Timeout   bool        // flags timeout: learned addresses
	PerDevice bool        // source . destination (Timeout sets of a segment)
	Ranges    []addrRange // flags interval (when not Timeout): static prefixes, merged
	// Segment is the segment a learned set is for; "" is the appliance itself.
	Segment string
}

// Chain is a base chain when Hook is set, else a regular one (a goto target).
type Chain struct {
	Name   string
	Hook   string // forward or output; "" for a regular chain
	Policy string // accept or drop, for base chains
	Rules  []Rule
}

// Rule is a list of terms and an optional comment.
type Rule struct {
	Terms   []term
	Comment string
}

func rule(comment string, terms ...term) Rule { return Rule{Terms: terms, Comment: comment} }

// Text is the rule as nft writes it.
func (r Rule) Text() string {
	parts := make([]string, 0, len(r.Terms)+1)
	for _, t := range r.Terms {
		parts = append(parts, t.text())
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

// Names of the counters, sets and chains. Segment names are [a-z][a-z0-9_-]*, which
// nft accepts in identifiers.
const (
	outputAllowed      = "output_allowed"
	outputDenied       = "output_denied"
	forwardOtherDenied = "forward_other_denied"
)

func ownSet(v6 bool) string  { return family("own", v6) }
func repoSet(v6 bool) string { return family("repos", v6) }
func ntpSet(v6 bool) string  { return family("ntp", v6) }

func segSet(seg string, v6 bool) string { return family("seg_"+seg, v6) }
func segChain(seg string) string        { return "seg_" + seg }
func segDenyChain(seg string) string    { return "seg_" + seg + "_deny" }
func segAllowed(seg string) string      { return "seg_" + seg + "_allowed" }
func segDenied(seg string) string       { return "seg_" + seg + "_denied" }

// learnedSet is the set that answers for segment ("" for the appliance) go into.
func learnedSet(seg string, v6 bool) string {
	if seg == "" {
		return ownSet(v6)
	}
	return segSet(seg, v6)
}

func family(base string, v6 bool) string {
	if v6 {
		return base + "_v6"
	}
	return base + "_v4"
}

// Log prefixes: the NFLOG reader takes the segment back from them.
const (
	logPrefixOutput  = "patchgate deny output "
	logPrefixSegment = "patchgate deny segment "
)

// Build makes the ruleset that enforces p. It is deterministic: the same policy gives
// the same ruleset, byte for byte in its text.
func Build(p Policy) *Ruleset {
	rs := &Ruleset{Counters: []string{outputAllowed, outputDenied, forwardOtherDenied}}
	for _, s := range p.Segments {
		rs.Counters = append(rs.Counters, segAllowed(s.Name), segDenied(s.Name))
	}
	for _, v6 := range []bool{false, true} {
		rs.Sets = append(rs.Sets,
			Set{Name: ownSet(v6), V6: v6, Timeout: true},
			Set{Name: repoSet(v6), V6: v6, Ranges: mergeRanges(p.Repositories, v6)},
			Set{Name: ntpSet(v6), V6: v6, Ranges: mergeRanges(p.TimeServers, v6)},
		)
	}
	for _, s := range p.Segments {
		rs.Sets = append(rs.Sets,
			Set{Name: segSet(s.Name, false), Timeout: true, PerDevice: true, Segment: s.Name},
			Set{Name: segSet(s.Name, true), V6: true, Timeout: true, PerDevice: true, Segment: s.Name})
	}
	rs.Chains = append(rs.Chains, outputChain(p), forwardChain(p))
	for _, s := range p.Segments {
		rs.Chains = append(rs.Chains, segmentChains(p, s)...)
	}
	return rs
}

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
	multicast4 = netip.MustParsePrefix("224.0.0.0/4")
	broadcast4 = netip.MustParsePrefix("255.255.255.255/32")
)

// outputChain is the appliance's own traffic: replies, its segments, the link, and
// otherwise only the egress destinations and learned addresses.
func outputChain(p Policy) Chain {
	c := Chain{Name: "output", Hook: "output", Policy: "drop"}
	add := func(r Rule) { c.Rules = append(c.Rules, r) }
	add(rule("", ifnameMatch{out: true, name: "lo"}, accept))
	add(rule("", ctStateMatch{ctEstablished | ctRelated}, accept))
	add(rule("", ctStateMatch{ctInvalid}, drop))
	add(rule("", prefixMatch{dst: true, prefix: linkLocal6}, accept))
	add(rule("", prefixMatch{dst: true, prefix: multicast6}, accept))
	for _, typ := range []byte{133, 135, 136} {
		add(rule("", icmpv6TypeMatch{typ}, accept))
	}
	add(rule("", prefixMatch{dst: true, prefix: multicast4}, accept))
	add(rule("", prefixMatch{dst: true, prefix: broadcast4}, accept))
	for _, l := range p.Local {
		add(rule("segment", prefixMatch{dst: true, prefix: l}, accept))
	}
	count := counterStmt{outputAllowed}
	for _, e := range p.Resolvers {
		dst := prefixMatch{dst: true, prefix: netip.PrefixFrom(e.Addr, e.Addr.BitLen())}
		if e.Proto == "udp" {
			add(rule("resolver", dst, dportMatch{protoUDP, e.Port}, count, accept))
		}
		add(rule("resolver", dst, dportMatch{protoTCP, e.Port}, count, accept))
	}
	for _, v6 := range []bool{false, true} {
		add(rule("time server", setMatch{dst: true, v6: v6, set: ntpSet(v6)}, dportMatch{protoUDP, 123}, count, accept))
	}
	for _, v6 := range []bool{false, true} {
		add(rule("repository", setMatch{dst: true, v6: v6, set: repoSet(v6)}, count, accept))
	}
	for _, v6 := range []bool{false, true} {
		add(rule("learned", setMatch{dst: true, v6: v6, set: ownSet(v6)}, count, accept))
	}
	if p.LogRate > 0 {
		add(rule("", logStmt{rate: p.LogRate, prefix: logPrefixOutput, group: p.LogGroup}))
	}
	add(rule("", counterStmt{outputDenied}, drop))
	return c
}

// forwardChain sends each gateway segment's new flows to its own chain and drops every
// other forwarded flow.
func forwardChain(p Policy) Chain {
	c := Chain{Name: "forward", Hook: "forward", Policy: "drop"}
	add := func(r Rule) { c.Rules = append(c.Rules, r) }
	add(rule("", ctStateMatch{ctEstablished | ctRelated}, accept))
	add(rule("", ctStateMatch{ctInvalid}, drop))
	for _, s := range p.Segments {
		for _, cl := range s.Clients {
			add(rule("", ifnameMatch{name: s.Device}, prefixMatch{prefix: cl}, gotoChain(segChain(s.Name))))
		}
	}
	add(rule("", counterStmt{forwardOtherDenied}, drop))
	return c
}

// segmentChains are a segment's policy (DNS only to the appliance; otherwise only the
// allowed ports of the addresses the device itself learned) and its deny chain (log
// at a bounded rate, count, reject).
func segmentChains(p Policy, s Segment) []Chain {
	deny := gotoChain(segDenyChain(s.Name))
	allow := Chain{Name: segChain(s.Name), Rules: []Rule{
		rule("DNS only to the appliance", dportMatch{protoUDP, 53}, deny),
		rule("DNS only to the appliance", dportMatch{protoTCP, 53}, deny),
		rule("DoT and DoQ only to the appliance", dportMatch{protoUDP, 853}, deny),
		rule("DoT and DoQ only to the appliance", dportMatch{protoTCP, 853}, deny),
	}}
	ports := s.Ports
	if len(ports) == 0 {
		ports = defaultPorts
	}
	for _, v6 := range []bool{false, true} {
		for _, pt := range ports {
			allow.Rules = append(allow.Rules, rule("learned", pairMatch{v6: v6, set: segSet(s.Name, v6)},
				dportMatch{pt.Proto, pt.Num}, counterStmt{segAllowed(s.Name)}, accept))
		}
	}
	allow.Rules = append(allow.Rules, rule("", deny))
	denyChain := Chain{Name: segDenyChain(s.Name)}
	if p.LogRate > 0 {
		denyChain.Rules = append(denyChain.Rules, rule("", logStmt{rate: p.LogRate, prefix: logPrefixSegment + s.Name + " ", group: p.LogGroup}))
	}
	denyChain.Rules = append(denyChain.Rules, rule("", counterStmt{segDenied(s.Name)}, rejectStmt{}))
	return []Chain{allow, denyChain}
}

// Text renders the ruleset as an nft script that replaces the table atomically, the
// way the applier does: create it if missing, delete it, define it, in one transaction.
func (rs *Ruleset) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", TableName, TableName, TableName)
	for _, c := range rs.Counters {
		fmt.Fprintf(&b, "\tcounter %s {\n\t}\n\n", c)
	}
	for _, s := range rs.Sets {
		typ := "ipv4_addr"
		if s.V6 {
			typ = "ipv6_addr"
		}
		if s.PerDevice {
			typ += " . " + typ
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", s.Name, typ)
		if s.Timeout {
			b.WriteString("\t\tflags timeout\n")
		} else {
			b.WriteString("\t\tflags interval\n")
			if len(s.Ranges) > 0 {
				elems := make([]string, len(s.Ranges))
				for i, r := range s.Ranges {
					elems[i] = r.String()
				}
				fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
			}
		}
		b.WriteString("\t}\n\n")
	}
	for i, c := range rs.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook != "" {
			fmt.Fprintf(&b, "\t\ttype filter hook %s priority filter; policy %s;\n", c.Hook, c.Policy)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.Text())
		}
		b.WriteString("\t}\n")
		if i < len(rs.Chains)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// set returns the ruleset's set called name.
func (rs *Ruleset) set(name string) (Set, bool) {
	for _, s := range rs.Sets {
		if s.Name == name {
			return s, true
		}
	}
	return Set{}, false
}
