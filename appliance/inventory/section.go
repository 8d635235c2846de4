package inventory

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/passive"
)

// Section is the inventory section of patchgate.yaml: it configures discovery (passive listening and active scans) and the asset
// inventory they feed. Both kinds of discovery are off unless enabled: listening needs
// CAP_NET_RAW, and scanning a site's network is the site's decision.
type Section struct {
	// Passive listens on interfaces for ARP, DHCP, mDNS, SSDP, LLDP and NetBIOS.
	Passive PassiveSection `yaml:"passive"`
	// Scan probes subnets on a schedule and on demand.
	Scan ScanSection `yaml:"scan"`
	// FragileTag marks assets that are never probed (tag them in the inventory).
	FragileTag string `yaml:"fragile_tag"`
	// NewFor is how long a device counts as new (highlighted on the status page).
	NewFor conf.Duration `yaml:"new_for"`
	// RulesFile adds a site's own fingerprint rules (same format as the built-in
	// rules, see netscan/fingerprint); its rules are applied after the built-in ones.
	RulesFile string `yaml:"rules_file"`
}

// PassiveSection configures passive listening.
type PassiveSection struct {
	Enabled bool `yaml:"enabled"`
	// Segments to listen on (their interfaces); Interfaces adds interfaces by name.
	Segments   []string `yaml:"segments"`
	Interfaces []string `yaml:"interfaces"`
	// Promiscuous also captures unicast frames for other hosts (a mirror port).
	Promiscuous bool `yaml:"promiscuous"`
	// RepeatWindow passes an identical observation on at most once per window.
	RepeatWindow conf.Duration `yaml:"repeat_window"`
}

// ScanSection configures active scans. Every probe stays under the netscan/active
// safety rules whatever is set here: printer ports never get data, one connection at
// a time per host, the rate caps, exclusions.
type ScanSection struct {
	Enabled bool `yaml:"enabled"`
	// Schedule is a cron expression (minute hour day-of-month month day-of-week) in
	// the appliance's local time zone; empty means on demand only.
	Schedule string `yaml:"schedule"`
	// Segments to scan: their client subnets, swept with ARP from their interface.
	Segments []string `yaml:"segments"`
	// Subnets adds subnets to scan (routed ones are found with TCP connects).
	Subnets []conf.Prefix `yaml:"subnets"`
	// ExcludeHosts and ExcludeSubnets are never sent anything.
	ExcludeHosts   []conf.Prefix `yaml:"exclude_hosts"`
	ExcludeSubnets []conf.Prefix `yaml:"exclude_subnets"`
	// Probes to run (arp, tcp, snmp, mdns, ssdp, http, ipp); empty means all.
	Probes []string `yaml:"probes"`
	// Ports for TCP connect probes; empty means the built-in short list.
	Ports []int `yaml:"ports"`
	// Communities are the SNMP v2c read communities tried, in order.
	Communities []conf.Secret `yaml:"communities"`
	// HostRate and GlobalRate cap packets per second to one host and in all.
	HostRate   int `yaml:"host_rate"`
	GlobalRate int `yaml:"global_rate"`
	// Timeout bounds each probe's wait for an answer.
	Timeout conf.Duration `yaml:"timeout"`
	// MaxAddresses refuses scans larger than this many addresses.
	MaxAddresses int `yaml:"max_addresses"`
}

var scanProbes = []string{"arp", "tcp", "snmp", "mdns", "ssdp", "http", "ipp"}

var tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,31}$`)

// Files lists the site's fingerprint rules file (relative to the config file's
// directory), for the loader to check.
func (v Section) Files(key string) []conf.FileRef {
	return []conf.FileRef{{Key: key + ".rules_file", Path: v.RulesFile, ConfigRelative: true}}
}

// Validate checks the inventory section and its references to the segments.
func (v Section) Validate(key string, segs *segment.Table, ps *conf.Problems) {
	if !tagPattern.MatchString(v.FragileTag) {
		ps.Addf(key+".fragile_tag", "must be a tag of lower-case letters, digits, _ . or - (max 32), got %q", v.FragileTag)
	}
	if v.NewFor.D() < time.Minute || v.NewFor.D() > 90*24*time.Hour {
		ps.Addf(key+".new_for", "must be between 1m and 2160h, got %s", v.NewFor.D())
	}
	p := v.Passive
	if rw := p.RepeatWindow.D(); rw < 0 || rw > 24*time.Hour {
		ps.Addf(key+".passive.repeat_window", "must be between 0s and 24h, got %s", rw)
	}
	checkSegments := func(k string, names []string, needInterface bool) {
		for i, name := range names {
			seg, ok := segs.Named(name)
			ik := conf.Index(k+"", i)
			switch {
			case !ok:
				ps.Addf(ik, "no segment named %q", name)
			case needInterface && seg.Device() == "":
				ps.Addf(ik, "segment %q has no interface to listen on", name)
			}
			if slices.Index(names, name) != i {
				ps.Addf(ik, "%q listed twice", name)
			}
		}
	}
	checkSegments(key+".passive.segments", p.Segments, true)
	for i, ifc := range p.Interfaces {
		if !segment.ValidInterface(ifc) {
			ps.Addf(conf.Index(key+".passive.interfaces", i), "must be an interface name of 1-15 characters without /, : or spaces, got %q", ifc)
		}
	}
	if p.Enabled && len(p.Segments)+len(p.Interfaces) == 0 {
		ps.Addf(key+".passive", "enabled but no segments or interfaces to listen on")
	}

	s := v.Scan
	sk := key + ".scan"
	if s.Schedule != "" {
		if _, err := cron.ParseStandard(s.Schedule); err != nil {
			ps.Addf(sk+".schedule", "must be a cron expression like \"30 2 * * *\": %v", err)
		}
	}
	checkSegments(sk+".segments", s.Segments, false)
	if s.Enabled && len(s.Segments)+len(s.Subnets) == 0 {
		ps.Addf(sk, "enabled but no segments or subnets to scan")
	}
	total := 0
	for _, name := range s.Segments {
		if seg, ok := segs.Named(name); ok {
			for _, cl := range seg.Clients {
				total += prefixSize(cl.Prefix)
			}
		}
	}
	for i, sub := range s.Subnets {
		k := conf.Index(sk+".subnets", i)
		switch {
		case !sub.Addr().Is4() && sub.Bits() != 128:
			ps.Addf(k, "IPv6 subnets cannot be swept; list single addresses (/128), got %s", sub)
		case sub.Masked() != sub.Prefix:
			ps.Addf(k, "has host bits set, want %s, got %s", sub.Masked(), sub)
		}
		total += prefixSize(sub.Prefix)
	}
	if s.MaxAddresses < 1 || s.MaxAddresses > 1<<16 {
		ps.Addf(sk+".max_addresses", "must be between 1 and 65536, got %d", s.MaxAddresses)
	} else if total > s.MaxAddresses {
		ps.Addf(sk, "%d addresses to scan, more than max_addresses (%d)", total, s.MaxAddresses)
	}
	for i, pr := range s.Probes {
		if !slices.Contains(scanProbes, pr) {
			ps.Addf(conf.Index(sk+".probes", i), "must be one of %s, got %q", strings.Join(scanProbes, ", "), pr)
		}
	}
	for i, port := range s.Ports {
		if port < 1 || port > 65535 {
			ps.Addf(conf.Index(sk+".ports", i), "must be 1-65535, got %d", port)
		}
	}
	for i, cm := range s.Communities {
		if cm.Value() == "" || len(cm.Value()) > 64 {
			ps.Addf(conf.Index(sk+".communities", i), "must be 1-64 characters")
		}
	}
	if s.HostRate < 1 || s.HostRate > 1000 {
		ps.Addf(sk+".host_rate", "must be 1-1000 packets/s, got %d", s.HostRate)
	}
	if s.GlobalRate < 1 || s.GlobalRate > 100000 {
		ps.Addf(sk+".global_rate", "must be 1-100000 packets/s, got %d", s.GlobalRate)
	} else if s.GlobalRate < s.HostRate {
		ps.Addf(sk+".global_rate", "must be at least host_rate (%d), got %d", s.HostRate, s.GlobalRate)
	}
	if s.Timeout.D() < 100*time.Millisecond || s.Timeout.D() > time.Minute {
		ps.Addf(sk+".timeout", "must be between 100ms and 1m, got %s", s.Timeout.D())
	}
}

func prefixSize(p netip.Prefix) int {
	if !p.Addr().Is4() {
		return 1
	}
	return 1 << (32 - p.Bits())
}

// DefaultSection is the inventory section of a config that leaves it out: discovery off.
func DefaultSection() Section {
	return Section{FragileTag: "fragile", NewFor: conf.Duration(7 * 24 * time.Hour),
		Passive: PassiveSection{RepeatWindow: conf.Duration(10 * time.Minute)},
		Scan: ScanSection{Schedule: "30 2 * * *", HostRate: 40, GlobalRate: 1000, Timeout: conf.Duration(2 * time.Second),
			MaxAddresses: 4096, Communities: []conf.Secret{"public"}}}
}

// Discovery is discovery's configuration for section ic: passive listening on the
// listed segments' interfaces and the listed interfaces, and scans of the listed
// segments' client subnets and the listed subnets, never of the appliance's own
// addresses.
func (ic Section) Discovery(segs *segment.Table) DiscoveryConfig {
	var dc DiscoveryConfig
	if ic.Passive.Enabled {
		ifaces := slices.Clone(ic.Passive.Interfaces)
		for _, name := range ic.Passive.Segments {
			if seg, ok := segs.Named(name); ok && seg.Device() != "" && !slices.Contains(ifaces, seg.Device()) {
				ifaces = append(ifaces, seg.Device())
			}
		}
		for _, ifc := range ifaces {
			dc.Passive = append(dc.Passive, passive.Config{Interface: ifc, Promiscuous: ic.Passive.Promiscuous,
				RepeatWindow: ic.Passive.RepeatWindow.D()})
		}
	}
	if !ic.Scan.Enabled {
		return dc
	}
	sc := ic.Scan
	ac := &active.Config{HostRate: float64(sc.HostRate), GlobalRate: float64(sc.GlobalRate), Timeout: sc.Timeout.D(),
		MaxAddresses: sc.MaxAddresses}
	for _, name := range sc.Segments {
		seg, ok := segs.Named(name)
		if !ok {
			continue
		}
		if seg.Device() != "" && !slices.Contains(ac.Interfaces, seg.Device()) {
			ac.Interfaces = append(ac.Interfaces, seg.Device())
		}
		for _, p := range seg.Clients {
			ac.Subnets = append(ac.Subnets, p.Prefix)
		}
	}
	for _, p := range sc.Subnets {
		ac.Subnets = append(ac.Subnets, p.Prefix)
	}
	for _, p := range sc.ExcludeHosts {
		ac.ExcludeSubnets = append(ac.ExcludeSubnets, p.Prefix)
	}
	for _, p := range sc.ExcludeSubnets {
		ac.ExcludeSubnets = append(ac.ExcludeSubnets, p.Prefix)
	}
	// The appliance's own addresses are never probed.
	for _, a := range segs.Addresses() {
		ac.ExcludeHosts = append(ac.ExcludeHosts, a.Addr())
	}
	for _, p := range sc.Probes {
		ac.Probes = append(ac.Probes, active.Probe(p))
	}
	for _, p := range sc.Ports {
		ac.Ports = append(ac.Ports, uint16(p))
	}
	for _, cm := range sc.Communities {
		ac.Communities = append(ac.Communities, cm.Value())
	}
	dc.Scan = ac
	dc.Schedule = sc.Schedule
	return dc
}
