package conf

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rate is a rate in bytes per second, written with its unit: "20Mbit/s", "2.5MB/s",
// "512KiB/s", "0" (no cap). Decimal units (kB, MB, GB, kbit, Mbit, Gbit) count in
// thousands, binary ones (KiB, MiB, GiB) in 1024s.
type Rate int64

var rateUnits = []struct {
	suffix string
	mult   float64 // bytes per second per unit
}{
	{"Gbit/s", 1e9 / 8}, {"Mbit/s", 1e6 / 8}, {"kbit/s", 1e3 / 8},
	{"GiB/s", 1 << 30}, {"MiB/s", 1 << 20}, {"KiB/s", 1 << 10},
	{"GB/s", 1e9}, {"MB/s", 1e6}, {"kB/s", 1e3}, {"B/s", 1},
}

// ParseRate parses a rate such as "20Mbit/s" or "2MB/s".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*u.mult > 1<<50 {
			break
		}
		return Rate(math.Round(v * u.mult)), nil
	}
	return 0, fmt.Errorf("want a rate like 20Mbit/s, 2MB/s or 512KiB/s")
}

// UnmarshalYAML parses rates.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseRate(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return TypeError(n, "want a rate like 20Mbit/s, 2MB/s or 512KiB/s, got %q", n.Value)
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate back in bytes per second.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(r), 10) + "B/s"
}
