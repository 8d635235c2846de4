package segment

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/conf"
)

// Segment is a named network segment the appliance serves: management, clinical,
// devices... The resolver's client groups, the shaper's budgets, the rollout windows and
// the gateway's egress policy all refer to segments by these names.
type Segment struct {
	Name      string `yaml:"name"`
	Interface string `yaml:"interface"` // e.g. eth1 or eth1.20; empty on a dev box
	// VLAN, when set, is the 802.1Q id on Interface: the segment is then on the
	// sub-interface Interface.VLAN (eth1 with vlan 30 is eth1.30).
	VLAN      int           `yaml:"vlan"`
	Addresses []conf.Prefix `yaml:"addresses"` // the appliance's own addresses on the segment, e.g. 10.20.0.1/24
	Clients   []conf.Prefix `yaml:"clients"`   // the client subnets behind it
	// Services lists what the appliance offers on the segment: dns, distribution,
	// agent, admin (the admin UI and /metrics). Left out, a segment gets
	// DefaultServices; admin must be asked for.
	Services []string `yaml:"services"`
}

// Section is the segments section: the list of segments. The zero value (no segments)
// is the default: then nothing is filtered by segment.
type Section []Segment

// Segment services, the values of Segment.Services.
const (
	ServiceDNS          = "dns"
	ServiceDistribution = "distribution"
	ServiceAgent        = "agent"
	ServiceAdmin        = "admin"
)

// DefaultServices are what a segment that lists no services gets: everything an
// endpoint needs, not the admin UI.
var DefaultServices = []string{ServiceDNS, ServiceDistribution, ServiceAgent}

var services = []string{ServiceDNS, ServiceDistribution, ServiceAgent, ServiceAdmin}

// Device is the network interface the segment is on as the kernel names it: Interface,
// or Interface.VLAN for a VLAN sub-interface. Empty when no interface is configured.
func (s Segment) Device() string {
	if s.Interface == "" || s.VLAN == 0 {
		return s.Interface
	}
	return s.Interface + "." + strconv.Itoa(s.VLAN)
}

// ClientPrefixes returns the segment's client subnets as netip prefixes.
func (s Segment) ClientPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(s.Clients))
	for i, c := range s.Clients {
		out[i] = c.Prefix
	}
	return out
}

// Serves reports whether the appliance offers service (ServiceDNS...) on the segment.
func (s Segment) Serves(service string) bool {
	if s.Services == nil {
		return slices.Contains(DefaultServices, service)
	}
	return slices.Contains(s.Services, service)
}

// ValidInterface follows the kernel's dev_valid_name: 1-15 bytes, not . or .., no /,
// colon or white space.
func ValidInterface(name string) bool {
	return len(name) > 0 && len(name) < 16 && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/: \t\n")
}

var segmentName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks the segments section.
func (segs Section) Validate(key string, ps *conf.Problems) {
	seen := map[string]bool{}
	for i, s := range segs {
		k := conf.Index(key, i)
		if !segmentName.MatchString(s.Name) {
			ps.Addf(k+".name", "must be lower-case letters, digits, - or _ (max 32), got %q", s.Name)
		} else if seen[s.Name] {
			ps.Addf(k+".name", "duplicate segment name %q", s.Name)
		}
		seen[s.Name] = true
		if len(s.Clients) == 0 {
			ps.Addf(k+".clients", "must list at least one client subnet")
		}
		if s.Interface != "" && !ValidInterface(s.Interface) {
			ps.Addf(k+".interface", "must be an interface name of 1-15 characters without /, : or spaces, got %q", s.Interface)
		}
		if s.VLAN != 0 {
			if s.VLAN < 1 || s.VLAN > 4094 {
				ps.Addf(k+".vlan", "must be 1-4094, got %d", s.VLAN)
			} else if s.Interface == "" {
				ps.Addf(k+".vlan", "needs an interface to be a VLAN of")
			} else if ValidInterface(s.Interface) && !ValidInterface(s.Device()) {
				ps.Addf(k+".vlan", "makes the interface name %q longer than 15 characters", s.Device())
			}
		}
		for j, a := range s.Addresses {
			if a.Addr().IsValid() && a.Addr() == a.Masked().Addr() && a.Bits() < a.Addr().BitLen()-1 {
				ps.Addf(conf.Index(k+".addresses", j), "is the network address of its subnet, want the appliance's own address such as %s", a.Addr().Next().String()+"/"+strconv.Itoa(a.Bits()))
			}
		}
		for j, svc := range s.Services {
			if !slices.Contains(services, svc) {
				ps.Addf(conf.Index(k+".services", j), "must be one of %s, got %q", strings.Join(services, ", "), svc)
			} else if slices.Index(s.Services, svc) != j {
				ps.Addf(conf.Index(k+".services", j), "%q listed twice", svc)
			}
		}
		for j, c := range s.Clients {
			if c.Addr().IsValid() && c.Masked() != c.Prefix {
				ps.Addf(conf.Index(k+".clients", j), "has host bits set, want %s, got %s", c.Masked(), c)
			}
		}
	}
	// A client address must map to one segment only.
	for i := range segs {
		for j := range i {
			for _, a := range segs[i].Clients {
				for _, b := range segs[j].Clients {
					if a.Overlaps(b.Prefix) {
						ps.Addf(conf.Index(key, i)+".clients", "%s overlaps %s of segment %q", a, b, segs[j].Name)
					}
				}
			}
		}
	}
}
