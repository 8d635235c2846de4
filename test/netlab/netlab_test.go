package netlab

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	RunRoles(map[string]func([]string) int{
		"echo": func(args []string) int {
			os.Stdout.WriteString(strings.Join(args, " "))
			return 0
		},
	})
	os.Exit(m.Run())
}

func TestLab(t *testing.T) {
	Require(t, "ping")
	lab := New(t, netip.MustParsePrefix("198.51.100.0/28"))
	a := lab.AddHost("a", HostConfig{MAC: "00:07:4d:00:00:01"})
	b := lab.AddHost("b", HostConfig{})
	if a.Addr != netip.MustParseAddr("198.51.100.1") || b.Addr != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("addresses = %s, %s; want .1 and .2", a.Addr, b.Addr)
	}
	if a.MAC != "00:07:4d:00:00:01" {
		t.Errorf("a.MAC = %q", a.MAC)
	}
	out := a.Run(t, "ping", "-c", "1", "-W", "2", b.Addr.String())
	if !strings.Contains(out, "1 received") {
		t.Errorf("ping a -> b: %s", out)
	}
	// The lab's addresses exist only in its namespaces.
	if host, err := os.ReadFile("/proc/net/fib_trie"); err == nil && strings.Contains(string(host), "198.51.100.1\n") {
		t.Errorf("lab address visible in the test's own namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := b.RoleCommand(ctx, "echo", "hello", "lab").Output()
	if err != nil || string(got) != "hello lab" {
		t.Errorf("role echo = %q, %v", got, err)
	}
	ns := a.NS
	t.Cleanup(func() {
		// Runs before the lab's own cleanup (LIFO): the namespace is still there.
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			t.Errorf("namespace %s gone before cleanup: %v", ns, err)
		}
	})
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	Require(t)
	var names []string
	t.Run("lab", func(t *testing.T) {
		lab := New(t, netip.MustParsePrefix("198.51.100.0/29"))
		names = append(names, lab.AddHost("x", HostConfig{}).NS, lab.sw)
	})
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("namespace %s left after the test", n)
		}
	}
}
