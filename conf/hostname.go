package conf

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// hostProfile maps a name the way a browser's address bar does (UTS #46, lower case,
// full-width forms folded) and checks it against the DNS rules: labels of letters,
// digits and hyphens after punycode, each 1-63 bytes, the whole at most 253.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true),
	idna.StrictDomainName(true), idna.VerifyDNSLength(true), idna.Transitional(false))

// HostName returns the canonical form of a DNS host name, the one Patchgate compares,
// stores and issues certificates for: lower case, one trailing dot removed, an
// internationalised name in its punycode (xn--) form. An IP address, a port, an empty
// name or one that is not a valid DNS name is an error naming what is wrong.
func HostName(s string) (string, error) {
	name := strings.TrimSuffix(s, ".")
	if name == "" || strings.HasSuffix(name, ".") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("host name %q: empty or with an empty label", s)
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return "", fmt.Errorf("host name %q: an IP address, not a name", s)
	}
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("host name %q: not UTF-8", s)
	}
	out, err := hostProfile.ToASCII(name)
	if err != nil {
		return "", fmt.Errorf("host name %q: %w", s, err)
	}
	// The canonical form must map to itself (a name that only looks valid before
	// mapping, e.g. with characters IDNA drops or replaces, is refused).
	if again, err := hostProfile.ToASCII(out); err != nil || again != out {
		return "", fmt.Errorf("host name %q: no stable DNS form", s)
	}
	return out, nil
}
