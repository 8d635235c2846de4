package gateway

import (
	"net/netip"
	"slices"
)

// addrRange is an inclusive range of addresses of one family: an element of an
// interval set.
type addrRange struct{ from, to netip.Addr }

// String is the range as nft writes it: an address, a prefix, or from-to.
func (r addrRange) String() string {
	if r.from == r.to {
		return r.from.String()
	}
	if p, ok := r.prefix(); ok {
		return p.String()
	}
	return r.from.String() + "-" + r.to.String()
}

// prefix returns the range as a prefix if it is exactly one.
func (r addrRange) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= r.from.BitLen(); bits++ {
		p := netip.PrefixFrom(r.from, bits)
		if p.Masked().Addr() != r.from {
			continue
		}
		if lastAddr(p) == r.to {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// mergeRanges turns the prefixes of one family into sorted ranges, joining those that
// overlap or touch, as an interval set must hold them.
func mergeRanges(ps []netip.Prefix, v6 bool) []addrRange {
	var rs []addrRange
	for _, p := range ps {
		if p.Addr().Is6() != v6 {
			continue
		}
		p = p.Masked()
		rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.from.Compare(b.from) })
	var out []addrRange
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next := last.to.Next()
			if r.from.Compare(last.to) <= 0 || (next.IsValid() && r.from == next) {
				if r.to.Compare(last.to) > 0 {
					last.to = r.to
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
