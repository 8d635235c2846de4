package segment

import (
	"net/netip"
	"slices"
)

// Table is the segments as the running appliance looks them up: which segment a client
// address is in, a segment by name, the clients of the segments offering a service.
// The wiring builds it once from the segments section and hands it to every subsystem
// that asks. It is read only, so safe for concurrent use; a nil Table has no segments.
type Table struct {
	segs     []Segment
	prefixes []entry // every client prefix, most specific first
}

type entry struct {
	p netip.Prefix
	i int // index in segs
}

// NewTable builds the table of segs (a validated segments section; with overlapping
// client subnets the most specific one wins).
func NewTable(segs []Segment) *Table {
	t := &Table{segs: slices.Clone(segs)}
	for i, s := range t.segs {
		for _, c := range s.Clients {
			t.prefixes = append(t.prefixes, entry{c.Masked(), i})
		}
	}
	slices.SortStableFunc(t.prefixes, func(a, b entry) int { return b.p.Bits() - a.p.Bits() })
	return t
}

// Len is the number of segments; 0 means none are configured (nothing is filtered by
// segment).
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.segs)
}

// All returns the segments in the order of the config. The caller must not modify them.
func (t *Table) All() []Segment {
	if t == nil {
		return nil
	}
	return t.segs
}

// Named returns the segment called name.
func (t *Table) Named(name string) (Segment, bool) {
	for _, s := range t.All() {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}

// Lookup returns the segment whose client subnets hold a (IPv4-mapped addresses are
// looked up as IPv4).
func (t *Table) Lookup(a netip.Addr) (Segment, bool) {
	if t == nil {
		return Segment{}, false
	}
	a = a.Unmap()
	for _, e := range t.prefixes {
		if e.p.Contains(a) {
			return t.segs[e.i], true
		}
	}
	return Segment{}, false
}

// NameOf names the segment whose client subnets hold a, "" when none does.
func (t *Table) NameOf(a netip.Addr) string {
	s, _ := t.Lookup(a)
	return s.Name
}

// Clients returns the client subnets of the segments that offer any of services, or of
// every segment when no service is named.
func (t *Table) Clients(services ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range t.All() {
		if len(services) == 0 || slices.ContainsFunc(services, s.Serves) {
			out = append(out, s.ClientPrefixes()...)
		}
	}
	return out
}

// Addresses returns the appliance's own addresses on every segment.
func (t *Table) Addresses() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range t.All() {
		for _, a := range s.Addresses {
			out = append(out, a.Prefix)
		}
	}
	return out
}
