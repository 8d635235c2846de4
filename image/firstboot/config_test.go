package firstboot

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/goldentest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestParseConfigNetwork(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"static-v4", "address: 192.168.10.5/24\ngateway: 192.168.10.1\ndns: [192.168.10.1, 9.9.9.9]\n"},
		{"one-interface", "interface: enp1s0\naddress: 10.0.0.2/31\n"},
		{"v6", "address: fd00:10::5/64\ngateway: fd00:10::1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig(ConfigFile, []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseConfig(%q) = %v", tt.in, err)
			}
			goldentest.Check(t, filepath.Join("testdata", tt.name+".network"), c.Network(), *update)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "address: must be set"},
		{"no address", "gateway: 10.0.0.1\n", "address: must be set"},
		{"unknown key", "address: 10.0.0.5/24\nnetmask: 255.0.0.0\n", "line 2: field netmask not found"},
		{"bare address", "address: 10.0.0.5\n", `address: want an address with prefix length like 192.168.10.5/24, got "10.0.0.5"`},
		{"network address", "address: 10.0.0.0/24\n", "address: want a host address"},
		{"gateway outside", "address: 10.0.0.5/24\ngateway: 10.1.0.1\n", "gateway: 10.1.0.1 is not inside 10.0.0.0/24"},
		{"gateway family", "address: 10.0.0.5/24\ngateway: fd00::1\n", "gateway: fd00::1 is not of the address's family"},
		{"bad dns", "address: 10.0.0.5/24\ndns: [resolver.example]\n", `dns[0]: want an IP address, got "resolver.example"`},
		{"bad interface", "interface: \"eth0\\nName=*\"\naddress: 10.0.0.5/24\n", "interface: want an interface name"},
		{"not a map", "- 1\n", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(ConfigFile, []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), ConfigFile+": ") {
				t.Errorf("ParseConfig(%q) = %v, want an error starting %q and containing %q", tt.in, err, ConfigFile, tt.want)
			}
		})
	}
}

func TestExampleFileParses(t *testing.T) {
	data, err := os.ReadFile("patchgate-firstboot.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig("example", data); err != nil {
		t.Errorf("the shipped example does not parse: %v", err)
	}
}

func TestWriteNetwork(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "systemd", "network")
	c, err := ParseConfig(ConfigFile, []byte("address: 192.168.10.5/24\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteNetwork(dir, c); err != nil {
		t.Fatalf("WriteNetwork: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, NetworkFile))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(c.Network()), string(got)); d != "" {
		t.Errorf("written file differs (-want +got):\n%s", d)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only %s (no temporary files left)", len(entries), NetworkFile)
	}
}

// FuzzParseConfig: ParseConfig never panics, and whatever it accepts renders to a
// .network file whose every line is a section header, a comment or key=value (no
// input can inject extra lines or sections).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("address: 192.168.10.5/24\ngateway: 192.168.10.1\ndns: [1.1.1.1]\n"))
	f.Add([]byte("interface: enp1s0\naddress: fd00::5/64\n"))
	f.Add([]byte("address: [1, 2]\n"))
	f.Add([]byte("interface: \"a\\nb\"\naddress: 10.0.0.1/8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz", data)
		if err != nil {
			return
		}
		sections := 0
		for _, line := range strings.Split(strings.TrimSpace(string(c.Network())), "\n") {
			switch {
			case line == "", strings.HasPrefix(line, "#"):
			case line == "[Match]" || line == "[Network]":
				sections++
			case strings.Contains(line, "=") && !strings.HasPrefix(line, "["):
			default:
				t.Fatalf("Network() has line %q for input %q", line, data)
			}
		}
		if sections != 2 {
			t.Fatalf("Network() has %d sections, want 2, for input %q", sections, data)
		}
	})
}
