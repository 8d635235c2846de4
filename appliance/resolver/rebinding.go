package resolver

import (
	"fmt"
	"net/netip"
)

// siteAddresses are the prefixes an answer for a public name may not point to (DNS
// rebinding): unspecified, "this network", loopback, RFC 1918, shared address space
// (RFC 6598), link-local, IPv6 unique local (RFC 4193) and the deprecated site-local.
// IPv4-mapped IPv6 addresses are checked as IPv4. The segments' own client prefixes
// are added per policy.
var siteAddresses = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fec0::/10"),
}

// rebinding is the compiled DNS rebinding protection of one policy: the names that may
// answer site addresses, and the segments' client prefixes (site addresses too).
type rebinding struct {
	internal *NameSet // a private domain matches itself and every name below it
	segments []netip.Prefix
}

// newRebinding compiles the private domains (checked by CheckPrivateDomains) and the
// segments' client prefixes.
func newRebinding(privateDomains []string, segments []netip.Prefix) *rebinding {
	rb := &rebinding{internal: newNameSet(), segments: segments}
	for _, d := range privateDomains {
		e, err := parseEntry(d)
		if err != nil {
			continue // New refused the config already
		}
		rb.internal.add(e)
		if !e.wildcard {
			rb.internal.add(entry{name: e.name, wildcard: true})
		}
	}
	return rb
}

// CheckPrivateDomains checks Config.PrivateDomains: each entry a name (that name and
// every name below it may answer site addresses) or "*.suffix" (only the names below).
// The error names the first bad entry by its index.
func CheckPrivateDomains(domains []string) error {
	for i, d := range domains {
		if _, err := parseEntry(d); err != nil {
			return fmt.Errorf("private_domains[%d]: %w", i, err)
		}
	}
	return nil
}

// site reports whether a is an address a public name may not answer.
func (rb *rebinding) site(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range siteAddresses {
		if p.Contains(a) {
			return true
		}
	}
	for _, p := range rb.segments {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
