package active

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/patchgate/patchgate/netscan"
)

// Defaults of Config.
const (
	DefaultHostRate     = 40   // packets per second to one host
	DefaultGlobalRate   = 1000 // packets per second in all
	DefaultTimeout      = 2 * time.Second
	DefaultARPWait      = 300 * time.Millisecond
	DefaultConcurrency  = 32
	DefaultMaxAddresses = 4096
)

// DefaultPorts are the TCP ports a scan connects to: remote access, web,
// file sharing, printing (631 IPP; 9100 raw printing, connect-only), RTSP.
var DefaultPorts = []uint16{22, 80, 139, 443, 445, 554, 631, 3389, 8080, 8443, 9100}

// DefaultPingPorts decide whether a host off the interface's subnets is
// alive (a connect or a refusal both say it is).
var DefaultPingPorts = []uint16{80, 443, 22, 445}

// DefaultCommunities are the SNMP v2c read communities tried, in order.
var DefaultCommunities = []string{"public"}

// Denied reports whether port is on the hard deny-list: printer data ports
// (LPD 515, raw printing 9100-9107) and 9999 (device consoles). Such a port
// is never sent any data, whatever the configuration; a scan at most opens
// and closes a connection to it.
func Denied(port uint16) bool {
	return port == 515 || (port >= 9100 && port <= 9107) || port == 9999
}

// Probe names one kind of probe.
type Probe string

// The probes of a scan.
const (
	ProbeARP  Probe = "arp"
	ProbeTCP  Probe = "tcp"
	ProbeSNMP Probe = "snmp"
	ProbeMDNS Probe = "mdns"
	ProbeSSDP Probe = "ssdp"
	ProbeHTTP Probe = "http"
	ProbeIPP  Probe = "ipp"
)

// AllProbes is the default probe set.
var AllProbes = []Probe{ProbeARP, ProbeTCP, ProbeSNMP, ProbeMDNS, ProbeSSDP, ProbeHTTP, ProbeIPP}

// Config configures a Scanner. The zero value of every field but Subnets
// means its default.
type Config struct {
	// Interface is where the ARP sweep goes out. Subnets the interface has an
	// address in are swept with ARP; others are found by TCP connect to
	// PingPorts. Empty: no ARP sweep. Interfaces adds more such interfaces
	// (an appliance on several segments); each address is swept from the
	// interface whose subnet holds it.
	Interface  string
	Interfaces []string
	// Subnets to scan (required). IPv4; an IPv6 prefix is allowed only as a
	// single address (/128).
	Subnets []netip.Prefix
	// ExcludeHosts and ExcludeSubnets never get a packet addressed to them.
	ExcludeHosts   []netip.Addr
	ExcludeSubnets []netip.Prefix
	// Exclude, when set, is asked before anything is sent to addr (mac is
	// zero then), and again once the ARP sweep learnt its MAC; true skips
	// the host. Use it for assets tagged fragile. It may be called from
	// several goroutines at once.
	Exclude func(addr netip.Addr, mac netscan.MAC) bool
	// Probes to run. Default AllProbes.
	Probes []Probe
	// Ports for TCP connect probes. Default DefaultPorts. Deny-listed ports
	// are connect-only.
	Ports []uint16
	// PingPorts find live hosts off the interface's subnets. Default DefaultPingPorts.
	PingPorts []uint16
	// Communities for SNMP v2c GET. Default DefaultCommunities.
	Communities []string
	// HostRate and GlobalRate cap packets per second. Defaults 40 and 1000.
	HostRate, GlobalRate float64
	// Timeout bounds each probe's wait for an answer. Default 2s.
	Timeout time.Duration
	// ARPWait is how long the sweep waits for late replies after each
	// round of requests. Default 300ms.
	ARPWait time.Duration
	// HTTPPorts and HTTPSPorts are read by the HTTP probe when open.
	// Defaults 80, 8080 and 443, 8443. Deny-listed ports are never read.
	HTTPPorts, HTTPSPorts []uint16
	// IPPPort, SNMPPort, SSDPPort and MDNSPort are where those probes go.
	// Defaults 631, 161, 1900, 5353.
	IPPPort, SNMPPort, SSDPPort, MDNSPort uint16
	// Concurrency is how many hosts are probed at once. Default 32.
	Concurrency int
	// MaxAddresses refuses a scan of more addresses than this. Default 4096.
	MaxAddresses int
}

func (c Config) withDefaults() Config {
	if c.Probes == nil {
		c.Probes = AllProbes
	}
	if c.Ports == nil {
		c.Ports = DefaultPorts
	}
	if c.PingPorts == nil {
		c.PingPorts = DefaultPingPorts
	}
	if c.Communities == nil {
		c.Communities = DefaultCommunities
	}
	if c.HostRate == 0 {
		c.HostRate = DefaultHostRate
	}
	if c.GlobalRate == 0 {
		c.GlobalRate = DefaultGlobalRate
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ARPWait == 0 {
		c.ARPWait = DefaultARPWait
	}
	if c.HTTPPorts == nil {
		c.HTTPPorts = []uint16{80, 8080}
	}
	if c.HTTPSPorts == nil {
		c.HTTPSPorts = []uint16{443, 8443}
	}
	if c.IPPPort == 0 {
		c.IPPPort = 631
	}
	if c.SNMPPort == 0 {
		c.SNMPPort = 161
	}
	if c.SSDPPort == 0 {
		c.SSDPPort = 1900
	}
	if c.MDNSPort == 0 {
		c.MDNSPort = 5353
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAddresses == 0 {
		c.MaxAddresses = DefaultMaxAddresses
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Subnets) == 0 {
		errs = append(errs, errors.New("subnets: none given"))
	}
	total := 0
	for i, p := range c.Subnets {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("subnets[%d]: invalid prefix", i))
		case p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() != 128:
			errs = append(errs, fmt.Errorf("subnets[%d]: %s: IPv6 subnets are not swept; give single addresses", i, p))
		case p.Addr().Is6() && !p.Addr().Is4In6():
			total++
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("subnets[%d]: %s: write IPv4 subnets in IPv4 form", i, p))
		default:
			total += 1 << (32 - p.Masked().Bits())
		}
	}
	if total > c.MaxAddresses {
		errs = append(errs, fmt.Errorf("subnets: %d addresses, more than max_addresses %d", total, c.MaxAddresses))
	}
	for _, p := range c.Probes {
		if !slices.Contains(AllProbes, p) {
			errs = append(errs, fmt.Errorf("probes: unknown probe %q", p))
		}
	}
	if c.HostRate < 0 || c.HostRate > 1000 {
		errs = append(errs, fmt.Errorf("host_rate: must be 0-1000 packets/s, got %v", c.HostRate))
	}
	if c.GlobalRate < 0 || c.GlobalRate > 100000 {
		errs = append(errs, fmt.Errorf("global_rate: must be 0-100000 packets/s, got %v", c.GlobalRate))
	}
	if c.Timeout < 0 || c.ARPWait < 0 || c.Concurrency < 0 || c.MaxAddresses < 0 {
		errs = append(errs, errors.New("timeout, arp_wait, concurrency, max_addresses: must not be negative"))
	}
	for _, port := range c.Ports {
		if port == 0 {
			errs = append(errs, errors.New("ports: port 0"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("active: config: %w", errors.Join(errs...))
	}
	return nil
}

func (c Config) has(p Probe) bool { return slices.Contains(c.Probes, p) }

// excluded reports whether the lists exclude addr.
func (c Config) excluded(addr netip.Addr) bool {
	if slices.Contains(c.ExcludeHosts, addr) {
		return true
	}
	for _, p := range c.ExcludeSubnets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// addresses expands the subnets into host addresses, skipping network and
// broadcast addresses of prefixes shorter than /31, and duplicates.
func (c Config) addresses() []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, p := range c.Subnets {
		p = p.Masked()
		if p.Addr().Is6() {
			if !seen[p.Addr()] {
				seen[p.Addr()] = true
				out = append(out, p.Addr())
			}
			continue
		}
		first := p.Addr()
		n := 1 << (32 - p.Bits())
		a := first
		for i := 0; i < n; i, a = i+1, a.Next() {
			if p.Bits() < 31 && (i == 0 || i == n-1) {
				continue
			}
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}
