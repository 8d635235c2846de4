package conf

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// TypeError reports a bad scalar from an UnmarshalYAML method so that yaml.v3 keeps
// decoding and the loader collects every problem with its line.
func TypeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}

// Duration is a time.Duration written as Go writes them: "90s", "15m", "72h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses "15m"-style durations.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return TypeError(n, "want a duration like 30s, 15m or 72h, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in the same form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size in bytes written with an optional binary unit: "512MiB", "20GiB".
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseByteSize parses "10GiB", "512 MiB" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size like 512MiB or 20GiB")
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML parses sizes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return TypeError(n, "want a size like 512MiB or 20GiB, got %q", n.Value)
	}
	*b = v
	return nil
}

// MarshalYAML writes the largest whole binary unit.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

func (b ByteSize) String() string {
	for _, u := range sizeUnits {
		if int64(b) >= u.mult && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Secret is a string that never prints: String, YAML and JSON give ********.
// Value returns the secret itself.
type Secret string

const redacted = "********"

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText redacts (JSON, slog).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Prefix is a network prefix such as 10.20.0.0/24 or fd00:20::/64.
type Prefix struct{ netip.Prefix }

// UnmarshalYAML parses a CIDR prefix; a bare address is a /32 or /128.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	v, err := netip.ParsePrefix(n.Value)
	if err != nil {
		a, aerr := netip.ParseAddr(n.Value)
		if aerr != nil || n.Kind != yaml.ScalarNode {
			return TypeError(n, "want a prefix like 10.20.0.0/24, got %q", n.Value)
		}
		v = netip.PrefixFrom(a, a.BitLen())
	}
	p.Prefix = v
	return nil
}

// MarshalYAML writes the prefix in CIDR form.
func (p Prefix) MarshalYAML() (any, error) { return p.String(), nil }

// MustPrefix parses s and panics on error; for defaults and tests.
func MustPrefix(s string) Prefix { return Prefix{netip.MustParsePrefix(s)} }

// CheckHostPort checks a listen address: host:port with an IP address, localhost or no
// host, and a port 0-65535. Its error says what is wanted, for a Problem.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port")
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("want an IP address or empty host")
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("want a port 0-65535")
	}
	return nil
}

// IsHTTPURL reports whether s is an absolute http:// or https:// URL with a host, as a
// feed, mirror or appliance address must be.
func IsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
