package firstboot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/atomicfile"
)

// ConfigFile is the name of the first-boot file on the ESP.
const ConfigFile = "patchgate-firstboot.yaml"

// NetworkFile is the systemd-networkd file Config.Network is written to. It sorts
// before the image's DHCP default (90-patchgate-dhcp.network), so it wins.
const NetworkFile = "10-patchgate-static.network"

// Config is patchgate-firstboot.yaml: a static address for the management interface.
type Config struct {
	Interface string       `yaml:"interface"` // empty: every Ethernet interface
	Address   netip.Prefix `yaml:"-"`
	Gateway   netip.Addr   `yaml:"-"`
	DNS       []netip.Addr `yaml:"-"`
}

type rawConfig struct {
	Interface string   `yaml:"interface"`
	Address   string   `yaml:"address"`
	Gateway   string   `yaml:"gateway"`
	DNS       []string `yaml:"dns"`
}

var ifaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$`)

// ParseConfig decodes a first-boot file strictly (unknown keys are errors) and checks
// it. name is used in messages, which read "NAME: key: what is wrong".
func ParseConfig(name string, data []byte) (Config, error) {
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%s: address: must be set (the file is empty)", name)
		}
		return Config{}, fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var c Config
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if raw.Interface != "" && !ifaceName.MatchString(raw.Interface) {
		bad("interface: want an interface name like enp1s0, got %q", raw.Interface)
	}
	c.Interface = raw.Interface
	if raw.Address == "" {
		bad("address: must be set, like 192.168.10.5/24")
	} else if p, err := netip.ParsePrefix(raw.Address); err != nil {
		bad("address: want an address with prefix length like 192.168.10.5/24, got %q", raw.Address)
	} else if p.Addr().IsUnspecified() || p.Addr().IsMulticast() || p.Addr().IsLoopback() || p.Masked().Addr() == p.Addr() && p.Bits() < p.Addr().BitLen()-1 {
		bad("address: want a host address, got %q", raw.Address)
	} else {
		c.Address = p
	}
	if raw.Gateway != "" {
		g, err := netip.ParseAddr(raw.Gateway)
		switch {
		case err != nil:
			bad("gateway: want an IP address, got %q", raw.Gateway)
		case c.Address.IsValid() && g.Is4() != c.Address.Addr().Is4():
			bad("gateway: %s is not of the address's family", g)
		case c.Address.IsValid() && g.Is4() && !c.Address.Masked().Contains(g):
			bad("gateway: %s is not inside %s", g, c.Address.Masked())
		default:
			c.Gateway = g
		}
	}
	for i, s := range raw.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			bad("dns[%d]: want an IP address, got %q", i, s)
			continue
		}
		c.DNS = append(c.DNS, a)
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("%s: %s", name, strings.Join(problems, "; "))
	}
	return c, nil
}

// Network renders c as a systemd-networkd .network file.
func (c Config) Network() []byte {
	var b bytes.Buffer
	b.WriteString("# Written at boot from " + ConfigFile + " on the ESP; do not edit.\n[Match]\n")
	if c.Interface != "" {
		fmt.Fprintf(&b, "Name=%s\n", c.Interface)
	} else {
		b.WriteString("Type=ether\nName=en* eth*\n")
	}
	fmt.Fprintf(&b, "\n[Network]\nAddress=%s\n", c.Address)
	if c.Gateway.IsValid() {
		fmt.Fprintf(&b, "Gateway=%s\n", c.Gateway)
	}
	for _, d := range c.DNS {
		fmt.Fprintf(&b, "DNS=%s\n", d)
	}
	b.WriteString("DHCP=no\n")
	return b.Bytes()
}

// WriteNetwork writes c.Network() to dir/NetworkFile atomically.
func WriteNetwork(dir string, c Config) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("firstboot: network: %w", err)
	}
	return writeAtomic(filepath.Join(dir, NetworkFile), c.Network(), 0o644)
}

// writeAtomic replaces path with data (atomicfile.Write), naming the file in an error.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("firstboot: write %s: %w", path, err)
	}
	return nil
}
