// Package netlab builds network labs for tests out of Linux network
// namespaces: a "switch" namespace holding one bridge, and hosts, each a
// namespace with one veth interface (eth0) plugged into the bridge, with an
// address from the lab's subnet and, if asked, a chosen MAC. Nothing is
// added to the test's own namespace: every address, route and link lives
// inside namespaces the lab created, so traffic between lab hosts never
// reaches a real network. Namespace names are "pg-" plus a random suffix,
// so labs of parallel tests do not collide, and everything is removed in
// t.Cleanup (processes first, then namespaces).
//
// Programs run inside a host with Host.Command, Host.Run and Host.Start
// (via `ip netns exec`). Go code of the test itself runs inside a host by
// re-executing the test binary in a role: call RunRoles from TestMain, and
// Host.RoleCommand to start a role.
//
// A lab needs root and iproute2; New skips the test with a clear message
// otherwise. Use Require to skip when other programs are missing.
//
//	lab := netlab.New(t, netip.MustParsePrefix("198.51.100.0/24"))
//	printer := lab.AddHost("printer", netlab.HostConfig{MAC: "00:07:4d:10:20:30"})
//	printer.Start(t, "snmpd", "-f", "-C", "-c", conf)
//	out := lab.AddHost("scanner", netlab.HostConfig{}).Run(t, "arp-scan", "-I", "eth0", "-l")
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lab is a set of namespaces joined by a bridge. Its methods are safe for
// concurrent use by one test's goroutines.
type Lab struct {
	t      testing.TB
	id     string
	subnet netip.Prefix
	sw     string // the switch namespace

	mu    sync.Mutex
	next  netip.Addr
	hosts []*Host
	procs []*exec.Cmd
}

// Host is one namespace of a lab, with eth0 on the lab's bridge.
type Host struct {
	Lab   *Lab
	Name  string     // the name given to AddHost
	NS    string     // the namespace's name, for `ip netns exec`
	Iface string     // "eth0"
	Addr  netip.Addr // its address on eth0
	MAC   string     // eth0's MAC address
}

// HostConfig describes a host to add.
type HostConfig struct {
	// Addr is the host's address; the zero value takes the next free one.
	Addr netip.Addr
	// MAC sets eth0's address ("00:07:4d:10:20:30"); empty keeps the
	// kernel's random (locally administered) one.
	MAC string
	// Multicast adds a route for 224.0.0.0/4 on eth0 so the host can send
	// mDNS and SSDP announcements.
	Multicast bool
}

// Require skips the test unless it runs as root and every program named
// is on PATH.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces (CI runs this as root)")
	}
	var missing []string
	for _, p := range append([]string{"ip"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Skipf("needs programs %v (Debian packages: iproute2 and the ones providing them)", missing)
	}
}

// New creates a lab with an empty bridge for hosts of subnet. It skips the
// test if it cannot (not root, no `ip`).
func New(t testing.TB, subnet netip.Prefix) *Lab {
	t.Helper()
	Require(t)
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		t.Fatalf("netlab: subnet %s: want an IPv4 prefix of /30 or larger", subnet)
	}
	b := make([]byte, 4)
	rand.Read(b)
	l := &Lab{t: t, id: hex.EncodeToString(b), subnet: subnet.Masked(), next: subnet.Masked().Addr().Next()}
	l.sw = "pg-" + l.id + "-sw"
	t.Cleanup(l.close)
	l.ip("netns", "add", l.sw)
	l.ip("-n", l.sw, "link", "set", "lo", "up")
	l.ip("-n", l.sw, "link", "add", "br0", "type", "bridge")
	// No STP and no forwarding delay: ports forward as soon as they are up.
	l.ip("-n", l.sw, "link", "set", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	l.ip("-n", l.sw, "link", "set", "br0", "up")
	return l
}

// Subnet is the lab's subnet.
func (l *Lab) Subnet() netip.Prefix { return l.subnet }

// Hosts returns the hosts added so far.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// AddHost creates a namespace named after name, plugs its eth0 into the
// bridge and gives it an address.
func (l *Lab) AddHost(name string, cfg HostConfig) *Host {
	l.t.Helper()
	l.mu.Lock()
	addr := cfg.Addr
	if !addr.IsValid() {
		addr = l.next
	}
	if !l.subnet.Contains(addr) {
		l.mu.Unlock()
		l.t.Fatalf("netlab: host %s: address %s outside %s", name, addr, l.subnet)
	}
	if addr.Compare(l.next) >= 0 {
		l.next = addr.Next()
	}
	idx := len(l.hosts)
	h := &Host{Lab: l, Name: name, NS: fmt.Sprintf("pg-%s-%d", l.id, idx), Iface: "eth0", Addr: addr}
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	port := fmt.Sprintf("p%d", idx)
	l.ip("netns", "add", h.NS)
	l.ip("-n", h.NS, "link", "set", "lo", "up")
	l.ip("-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	l.ip("-n", l.sw, "link", "set", port, "master", "br0", "up")
	if cfg.MAC != "" {
		l.ip("-n", h.NS, "link", "set", "eth0", "address", cfg.MAC)
	}
	l.ip("-n", h.NS, "addr", "add", netip.PrefixFrom(addr, l.subnet.Bits()).String(), "dev", "eth0")
	l.ip("-n", h.NS, "link", "set", "eth0", "up")
	if cfg.Multicast {
		l.ip("-n", h.NS, "route", "add", "224.0.0.0/4", "dev", "eth0")
	}
	out := l.ip("-n", h.NS, "-j", "link", "show", "eth0")
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("netlab: host %s: read MAC: %v %q", name, err, out)
	}
	h.MAC = links[0].Address
	return h
}

// ip runs `ip args...` in the test's namespace (every command names its
// target namespace) and fails the test on error.
func (l *Lab) ip(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns a command that runs name inside h. It is not started.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs name inside h, waits, and returns its standard output; it fails
// the test if the program fails.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.Command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("netlab: %s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Start starts name inside h in the background, its output discarded; it
// is killed (with its process group) when the test ends. To keep its
// output, build the command with Command, set Stdout/Stderr, and StartCmd.
func (h *Host) Start(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := h.Command(context.Background(), name, args...)
	h.StartCmd(t, cmd)
	return cmd
}

// StartCmd starts a command made by Command or RoleCommand and kills it
// when the test ends.
func (h *Host) StartCmd(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("netlab: %s: start %v: %v", h.Name, cmd.Args, err)
	}
	h.Lab.mu.Lock()
	h.Lab.procs = append(h.Lab.procs, cmd)
	h.Lab.mu.Unlock()
}

// Stop ends a command started with Start or StartCmd (SIGTERM to its
// process group, then SIGKILL after 5s) and waits for it.
func Stop(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (l *Lab) close() {
	l.mu.Lock()
	procs, hosts := l.procs, l.hosts
	l.mu.Unlock()
	for _, p := range procs {
		Stop(p)
	}
	for _, h := range hosts {
		exec.Command("ip", "netns", "del", h.NS).Run()
	}
	exec.Command("ip", "netns", "del", l.sw).Run()
}

const roleEnv, argsEnv = "PG_NETLAB_ROLE", "PG_NETLAB_ARGS"

// RunRoles must be called first thing in TestMain. When this process was
// started by RoleCommand, it runs that role's function with its arguments
// and exits with its status; otherwise it returns and the tests run.
func RunRoles(roles map[string]func(args []string) int) {
	name := os.Getenv(roleEnv)
	if name == "" {
		return
	}
	f, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "netlab: unknown role %q\n", name)
		os.Exit(2)
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(argsEnv)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "netlab: role %s: arguments: %v\n", name, err)
		os.Exit(2)
	}
	os.Exit(f(args))
}

// RoleCommand returns a command that re-executes the test binary inside h
// in the given role (see RunRoles), with args. It is not started.
func (h *Host) RoleCommand(ctx context.Context, role string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	b, _ := json.Marshal(args)
	cmd := h.Command(ctx, exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, argsEnv+"="+string(b))
	return cmd
}
