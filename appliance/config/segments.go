package config

import "regexp"

// Segment is a named network segment the appliance serves: management, clinical,
// devices... The resolver's client groups, the shaper's budgets, the rollout windows and
// the gateway's egress policy all refer to segments by these names.
type Segment struct {
	Name      string   `yaml:"name"`
	Interface string   `yaml:"interface"` // e.g. eth1 or eth1.20; empty on a dev box
	Addresses []Prefix `yaml:"addresses"` // the appliance's own addresses on the segment
	Clients   []Prefix `yaml:"clients"`   // the client subnets behind it
}

var segmentName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func validateSegments(segs []Segment, key string, ps *Problems) {
	seen := map[string]bool{}
	for i, s := range segs {
		k := key + "[" + itoa(i) + "]"
		if !segmentName.MatchString(s.Name) {
			ps.Addf(k+".name", "must be lower-case letters, digits, - or _ (max 32), got %q", s.Name)
		} else if seen[s.Name] {
			ps.Addf(k+".name", "duplicate segment name %q", s.Name)
		}
		seen[s.Name] = true
		if len(s.Clients) == 0 {
			ps.Addf(k+".clients", "must list at least one client subnet")
		}
		for j, c := range s.Clients {
			if c.Addr().IsValid() && c.Masked() != c.Prefix {
				ps.Addf(k+".clients["+itoa(j)+"]", "has host bits set, want %s, got %s", c.Masked(), c)
			}
		}
	}
	// A client address must map to one segment only.
	for i := range segs {
		for j := range i {
			for _, a := range segs[i].Clients {
				for _, b := range segs[j].Clients {
					if a.Overlaps(b.Prefix) {
						ps.Addf(key+"["+itoa(i)+"].clients", "%s overlaps %s of segment %q", a, b, segs[j].Name)
					}
				}
			}
		}
	}
}

// SegmentNamed returns the segment called name.
func (c *Config) SegmentNamed(name string) (Segment, bool) {
	for _, s := range c.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}
