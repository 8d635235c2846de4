package scan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/passive"
	"github.com/patchgate/patchgate/netscan/scantest"
	"github.com/patchgate/patchgate/test/netlab"
)

func TestMain(m *testing.M) {
	netlab.RunRoles(map[string]func([]string) int{"discover": roleDiscover})
	os.Exit(m.Run())
}

// roleDiscover runs Patchgate's discovery (ARP sweep only, default caps)
// inside the scanner namespace and prints the live addresses as JSON.
// Args: iface subnet.
func roleDiscover(args []string) int {
	m, _ := active.NewMetrics(prometheus.NewRegistry())
	s, err := active.New(active.Config{
		Interface: args[0],
		Subnets:   []netip.Prefix{netip.MustParsePrefix(args[1])},
		Probes:    []active.Probe{active.ProbeARP},
	}, m, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var live []netip.Addr
	if _, err := s.Scan(context.Background(), func(o netscan.Observation) { live = append(live, o.Addr) }, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(live)
	return 0
}

var labNet = netip.MustParsePrefix("198.51.100.0/24")

// BenchmarkDiscover times finding every live host of a /24 (N live) with
// each tool, as a whole process run inside the scanner's namespace, and
// reports hosts found per run (the scanner itself not counted).
func BenchmarkDiscover(b *testing.B) {
	netlab.Require(b)
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) {
			lab := netlab.New(b, labNet)
			scanner := lab.AddHost("scanner", netlab.HostConfig{})
			for i := 0; i < n; i++ {
				// Spread the live hosts over the /24.
				lab.AddHost(fmt.Sprintf("h%d", i), netlab.HostConfig{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i*4)})})
			}
			self := scanner.Addr.String()
			tools := []struct {
				name    string
				program string
				cmd     func(ctx context.Context) *exec.Cmd
				count   func(out []byte) int
			}{
				{"patchgate", "", func(ctx context.Context) *exec.Cmd {
					return scanner.RoleCommand(ctx, "discover", "eth0", labNet.String())
				}, func(out []byte) int {
					var live []string
					json.Unmarshal(out, &live)
					return len(live)
				}},
				{"nmap", "nmap", func(ctx context.Context) *exec.Cmd {
					return scanner.Command(ctx, "nmap", "-sn", "-n", "-e", "eth0", "-oG", "-", labNet.String())
				}, func(out []byte) int { return countLines(out, regexp.MustCompile(`^Host: (\S+) .*Status: Up`), self) }},
				{"arp-scan", "arp-scan", func(ctx context.Context) *exec.Cmd {
					return scanner.Command(ctx, "arp-scan", "-I", "eth0", "-q", "-x", labNet.String())
				}, func(out []byte) int { return countLines(out, regexp.MustCompile(`^(\d+\.\d+\.\d+\.\d+)\s`), self) }},
			}
			for _, tool := range tools {
				b.Run(tool.name, func(b *testing.B) {
					if tool.program != "" {
						if _, err := exec.LookPath(tool.program); err != nil {
							b.Skipf("%s not installed (Debian package %s)", tool.program, tool.program)
						}
					}
					found := 0
					for b.Loop() {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						cmd := tool.cmd(ctx)
						var stderr bytes.Buffer
						cmd.Stderr = &stderr
						out, err := cmd.Output()
						cancel()
						if err != nil {
							b.Fatalf("%s: %v\n%s", tool.name, err, stderr.String())
						}
						found = tool.count(out)
					}
					b.ReportMetric(float64(found), "hosts")
					if found != n {
						b.Errorf("%s found %d hosts, want %d", tool.name, found, n)
					}
				})
			}
		})
	}
}

// countLines counts distinct first groups of re over out's lines, except self.
func countLines(out []byte, re *regexp.Regexp, self string) int {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil && m[1] != self {
			seen[m[1]] = true
		}
	}
	return len(seen)
}

// frames loads the passive decoder's recorded frames.
func frames(b *testing.B) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "..", "netscan", "passive", "testdata", "frames", "*.pcap"))
	var out [][]byte
	for _, p := range paths {
		if strings.Contains(p, "bad") || strings.Contains(p, "truncated") || strings.Contains(p, "garbage") {
			continue // the mix below is of well-formed traffic
		}
		out = append(out, scantest.ReadPcap(b, p)...)
	}
	if len(out) == 0 {
		b.Fatal("no recorded frames")
	}
	return out
}

// BenchmarkPassiveDecode replays recorded frames through one Decoder on
// one goroutine, 100000 frames per op, and reports frames per second:
// "mix" cycles through every recorded kind (ARP, DHCP, mDNS, SSDP, LLDP,
// NetBIOS, frames of no interest) equally; "arp" is ARP alone, the bulk of
// what a segment carries.
func BenchmarkPassiveDecode(b *testing.B) {
	all := frames(b)
	var arp [][]byte
	for _, f := range all {
		if len(f) > 13 && f[12] == 0x08 && f[13] == 0x06 {
			arp = append(arp, f)
		}
	}
	for _, mix := range []struct {
		name string
		fs   [][]byte
	}{{"mix", all}, {"arp", arp}} {
		b.Run(mix.name, func(b *testing.B) {
			const perOp = 100000
			d := passive.NewDecoder("bench0")
			emit := func(netscan.Observation) {}
			b.ReportAllocs()
			n := 0
			start := time.Now()
			for b.Loop() {
				for i := 0; i < perOp; i++ {
					d.Decode(mix.fs[i%len(mix.fs)], start, emit)
				}
				n += perOp
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "frames/s")
		})
	}
}

// BenchmarkPassiveReplay runs the whole Capture loop (decode, repeat
// suppression, counters) over a pcap of 100000 recorded frames.
func BenchmarkPassiveReplay(b *testing.B) {
	fs := frames(b)
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65536, 1)
	now := time.Now()
	for i := 0; i < 100000; i++ {
		f := fs[i%len(fs)]
		w.WritePacket(gopacketInfo(now, len(f)), f)
	}
	data := buf.Bytes()
	m, _ := passive.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	total := 0
	start := time.Now()
	for b.Loop() {
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		c := passive.NewReplay("bench0", r, m, log, time.Now)
		if err := c.Run(context.Background(), func(netscan.Observation) {}); err != nil {
			b.Fatal(err)
		}
		total += 100000
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "frames/s")
}
