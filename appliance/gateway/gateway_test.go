package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/test/netlab"
)

// testPolicy routes for one segment, "devices", on dev0, and lets the appliance reach
// one repository prefix.
func testPolicy() Policy {
	return Policy{
		Segments:     []Segment{{Name: "devices", Device: "dev0", Clients: []netip.Prefix{netip.MustParsePrefix("10.30.0.0/24"), netip.MustParsePrefix("fd00:30::/64")}}},
		Local:        []netip.Prefix{netip.MustParsePrefix("10.30.0.0/24"), netip.MustParsePrefix("fd00:30::/64")},
		Repositories: []netip.Prefix{netip.MustParsePrefix("192.0.2.80/32")},
		Grace:        2 * time.Second,
		MaxTimeout:   time.Hour,
		LogGroup:     17,
		LogRate:      100,
		Stats:        time.Minute,
		Refresh:      time.Hour,
	}
}

type running struct {
	g      *Gateway
	ns     string
	reg    *prometheus.Registry
	logs   *netlab.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs a Gateway on p in a new namespace until the test ends (or stop).
func startGateway(t *testing.T, p Policy, clk clock.Clock) *running {
	t.Helper()
	ns, fd := newNetNS(t)
	return startGatewayIn(t, ns, fd, p, clk)
}

// startGatewayIn runs a Gateway on p in namespace ns (fd) until the test ends (or stop).
func startGatewayIn(t *testing.T, ns string, fd int, p Policy, clk clock.Clock) *running {
	t.Helper()
	r := &running{ns: ns, reg: prometheus.NewRegistry(), logs: &netlab.Buffer{}, done: make(chan error, 1)}
	g, err := New(p, Options{
		Logger:   slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: r.reg,
		Clock:    clk,
		NetNS:    fd,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.g = g
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- g.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		g.Close()
	})
	clocktest.WaitFor(t, "ruleset applied", g.Ready)
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}

// near reports whether the kernel's timeout got is want less the little time that
// passed between the answer and the write (and the kernel's jiffy rounding).
func near(got, want time.Duration) bool { return got <= want && got > want-time.Second }

var elementRE = regexp.MustCompile(`([0-9a-f:.]+(?: \. [0-9a-f:.]+)?) timeout ([0-9hms]+)`)

// client is a device of testPolicy's segment, client6 another one's IPv6 address.
var (
	client  = netip.MustParseAddr("10.30.0.10")
	client6 = netip.MustParseAddr("fd00:30::10")
)

// setElements lists a set with nft and returns each element's timeout; a segment's
// elements are "device . destination".
func setElements(t *testing.T, ns, set string) map[string]time.Duration {
	t.Helper()
	out := mustNft(t, ns, "", "list", "set", "inet", TableName, set)
	got := map[string]time.Duration{}
	for _, m := range elementRE.FindAllStringSubmatch(out, -1) {
		d, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("timeout %q in %s", m[2], out)
		}
		got[m[1]] = d
	}
	return got
}

func counterPackets(t *testing.T, ns, name string) int {
	t.Helper()
	out := mustNft(t, ns, "", "list", "counter", "inet", TableName, name)
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packets in %s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// sendUDP sends one datagram from inside the namespace with bash's /dev/udp, and
// reports whether the kernel let it out.
func sendUDP(t *testing.T, ns, dst string, port int) bool {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "bash", "-c", fmt.Sprintf("echo x > /dev/udp/%s/%d", dst, port))
	return cmd.Run() == nil
}

// localLink gives the namespace a veth pair of its own (both ends inside it) with an
// address on 192.0.2.0/24, so that packets to that subnet pass the output hook and
// then stay in the namespace.
func localLink(t *testing.T, ns string) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"addr", "add", "192.0.2.1/24", "dev", "v0"},
		{"link", "set", "v0", "up"},
		{"link", "set", "v1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
}

func TestApplyRemoveAndOtherTables(t *testing.T) {
	p := testPolicy()
	p.OpenOnStop = true
	r := startGateway(t, p, nil)
	// A table that is not ours, created after ours: it must survive everything.
	mustNft(t, r.ns, "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t}\n}\n", "-f", "-")
	if err := r.g.Reconfigure(p); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	tables := mustNft(t, r.ns, "", "list", "tables")
	if !strings.Contains(tables, "table inet patchgate") || !strings.Contains(tables, "table inet other") {
		t.Fatalf("tables while running = %q, want inet patchgate and inet other", tables)
	}
	r.stop(t)
	tables = mustNft(t, r.ns, "", "list", "tables")
	if strings.Contains(tables, "patchgate") {
		t.Errorf("tables after stop = %q, want inet patchgate removed (open_on_stop)", tables)
	}
	if !strings.Contains(tables, "table inet other") {
		t.Errorf("tables after stop = %q, want inet other left alone", tables)
	}
}

func TestFailClosedLeavesTable(t *testing.T) {
	r := startGateway(t, testPolicy(), nil) // closed on stop is the default
	r.stop(t)
	if tables := mustNft(t, r.ns, "", "list", "tables"); !strings.Contains(tables, "table inet patchgate") {
		t.Errorf("tables after a fail-closed stop = %q, want inet patchgate still there", tables)
	}
}

// TestClosedWhileDownAndTakenOver: with the default policy the table and its learned
// elements outlive Run: while the gateway is down the drop policies stay and only the
// learned addresses pass; the next Run takes the elements over with the lifetime they
// have left (and knows them: an answer that would not extend one needs no write).
func TestClosedWhileDownAndTakenOver(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	localLink(t, r.ns)
	learnedOwn := netip.MustParseAddr("192.0.2.50")
	r.g.Learned("", netip.Addr{}, "own.example", []netip.Addr{learnedOwn}, time.Hour)
	r.g.Learned("devices", client, "dev.example", []netip.Addr{netip.MustParseAddr("198.51.100.70")}, time.Hour)
	const devElem = "10.30.0.10 . 198.51.100.70"
	r.stop(t)

	if got := setElements(t, r.ns, "seg_devices_v4"); !near(got[devElem], time.Hour) { // capped by max_timeout
		t.Errorf("seg_devices_v4 after stop = %v, want %s kept with its timeout", got, devElem)
	}
	for _, chain := range []string{"forward", "output"} {
		if out := mustNft(t, r.ns, "", "list", "chain", "inet", TableName, chain); !strings.Contains(out, "policy drop;") {
			t.Errorf("chain %s after stop lost its drop policy:\n%s", chain, out)
		}
	}
	if sendUDP(t, r.ns, "192.0.2.99", 9) {
		t.Error("while the gateway was down the appliance sent to 192.0.2.99, which was never learned")
	}
	if !sendUDP(t, r.ns, learnedOwn.String(), 9) {
		t.Errorf("while the gateway was down the appliance could not send to the learned %s", learnedOwn)
	}

	// Time passes while it is down: the kernel counts the timeouts down.
	time.Sleep(1100 * time.Millisecond)
	f, err := os.Open("/run/netns/" + r.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	again := startGatewayIn(t, r.ns, int(f.Fd()), testPolicy(), nil)
	got := setElements(t, r.ns, "seg_devices_v4")
	if d, ok := got[devElem]; !ok || d > time.Hour+time.Second || d < time.Hour-time.Minute {
		t.Errorf("after the restart seg_devices_v4 = %v, want %s with the lifetime it had left (under 1h1s)", got, devElem)
	}
	if got := setElements(t, r.ns, "own_v4"); got[learnedOwn.String()] == 0 {
		t.Errorf("after the restart own_v4 = %v, want %s taken over", got, learnedOwn)
	}
	// An answer that would not extend the element needs no write: the gateway knows it.
	again.g.Learned("devices", client, "dev.example", []netip.Addr{netip.MustParseAddr("198.51.100.70")}, 30*time.Minute)
	if n := histogramCount(t, again.reg, "patchgate_gateway_learn_batch_elements"); n != 0 {
		t.Errorf("a shorter answer after the restart took %d batches, want 0 (the element was taken over)", n)
	}
	if !strings.Contains(again.logs.String(), "took over the learned addresses") {
		t.Errorf("no log line about taking over the learned addresses:\n%s", again.logs.String())
	}
}

func TestLearnedAddressesReachTheSets(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	tests := []struct {
		name    string
		segment string
		client  netip.Addr
		addrs   []netip.Addr
		ttl     time.Duration
		set     string
		want    map[string]time.Duration
	}{
		{"segment v4", "devices", client, []netip.Addr{netip.MustParseAddr("198.51.100.10")}, 60 * time.Second, "seg_devices_v4",
			map[string]time.Duration{"10.30.0.10 . 198.51.100.10": 62 * time.Second}},
		{"segment v6, a v4 address skipped", "devices", client6, []netip.Addr{netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("198.51.100.12")}, 10 * time.Second, "seg_devices_v6",
			map[string]time.Duration{"fd00:30::10 . 2001:db8::10": 12 * time.Second}},
		{"segment, a mapped v4 and a v6 address skipped", "devices", netip.MustParseAddr("::ffff:10.30.0.10"), []netip.Addr{netip.MustParseAddr("::ffff:198.51.100.11"), netip.MustParseAddr("2001:db8::11")}, 10 * time.Second, "seg_devices_v4",
			map[string]time.Duration{"10.30.0.10 . 198.51.100.11": 12 * time.Second}},
		{"appliance itself", "", netip.Addr{}, []netip.Addr{netip.MustParseAddr("198.51.100.20")}, 0, "own_v4",
			map[string]time.Duration{"198.51.100.20": 2 * time.Second}},
		{"capped by max timeout", "", netip.Addr{}, []netip.Addr{netip.MustParseAddr("198.51.100.21")}, 48 * time.Hour, "own_v4",
			map[string]time.Duration{"198.51.100.20": 2 * time.Second, "198.51.100.21": time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.g.Learned(tt.segment, tt.client, "updates.example.com", tt.addrs, tt.ttl)
			// Learned returns once the batch is in: no waiting here.
			got := setElements(t, r.ns, tt.set)
			for a, want := range tt.want {
				if d, ok := got[a]; !ok || !near(d, want) {
					t.Errorf("after Learned(%q, %v, %v): %s has %s with timeout %v (present %v), want %v; set: %v", tt.segment, tt.addrs, tt.ttl, tt.set, a, d, ok, want, got)
				}
			}
		})
	}
	if got := setElements(t, r.ns, "seg_devices_v4"); got["10.30.0.10 . 198.51.100.11"] == 0 {
		t.Errorf("mapped address ::ffff:198.51.100.11 not in seg_devices_v4: %v", got)
	}
	if got := setElements(t, r.ns, "seg_devices_v4"); len(got) != 2 {
		t.Errorf("seg_devices_v4 = %v, want the two v4 elements only (no address of the other family)", got)
	}
	r.g.Learned("printers", client, "x.example", []netip.Addr{netip.MustParseAddr("198.51.100.99")}, time.Minute)
	if got := metricValue(t, r.reg, "patchgate_gateway_answers_ignored_total"); got != 1 {
		t.Errorf("answers ignored = %v after an answer for an unrouted segment, want 1", got)
	}
	// A client outside the segment's subnets (or none) teaches nothing.
	r.g.Learned("devices", netip.MustParseAddr("10.40.0.10"), "x.example", []netip.Addr{netip.MustParseAddr("198.51.100.98")}, time.Minute)
	r.g.Learned("devices", netip.Addr{}, "x.example", []netip.Addr{netip.MustParseAddr("198.51.100.97")}, time.Minute)
	if got := metricValue(t, r.reg, "patchgate_gateway_answers_ignored_total"); got != 3 {
		t.Errorf("answers ignored = %v after answers from outside the segment, want 3", got)
	}
}

func TestLearnedRefreshExtendsTimeout(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	a := []netip.Addr{netip.MustParseAddr("198.51.100.30")}
	r.g.Learned("devices", client, "a.example", a, 8*time.Second)
	if got := setElements(t, r.ns, "seg_devices_v4")["10.30.0.10 . 198.51.100.30"]; !near(got, 10*time.Second) {
		t.Fatalf("timeout after the first answer = %v, want 10s", got)
	}
	// A shorter answer never shortens an entry.
	r.g.Learned("devices", client, "a.example", a, 1*time.Second)
	if got := setElements(t, r.ns, "seg_devices_v4")["10.30.0.10 . 198.51.100.30"]; !near(got, 10*time.Second) {
		t.Errorf("timeout after a shorter answer = %v, want 10s kept", got)
	}
	// A longer one renews it (delete and add in one batch: every kernel renews).
	r.g.Learned("devices", client, "a.example", a, 300*time.Second)
	if got := setElements(t, r.ns, "seg_devices_v4")["10.30.0.10 . 198.51.100.30"]; !near(got, 302*time.Second) {
		t.Errorf("timeout after a longer answer = %v, want 302s", got)
	}
	// Deleted behind our back: the next write must still succeed.
	mustNft(t, r.ns, "", "delete", "element", "inet", TableName, "seg_devices_v4", "{ 10.30.0.10 . 198.51.100.30 }")
	r.g.Learned("devices", client, "a.example", a, 900*time.Second)
	if got := setElements(t, r.ns, "seg_devices_v4")["10.30.0.10 . 198.51.100.30"]; !near(got, 902*time.Second) {
		t.Errorf("timeout after re-learning a hand-deleted element = %v, want 902s", got)
	}
}

func TestLearnedBurstIsBatched(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)})
			r.g.Learned("devices", client, "burst.example", []netip.Addr{a}, time.Minute)
		}()
	}
	wg.Wait()
	if got := len(setElements(t, r.ns, "seg_devices_v4")); got != n {
		t.Fatalf("seg_devices_v4 holds %d elements after %d answers, want %d", got, n, n)
	}
	batches := histogramCount(t, r.reg, "patchgate_gateway_learn_batch_elements")
	if batches >= n {
		t.Errorf("%d answers took %d netlink batches, want fewer (batched)", n, batches)
	}
	t.Logf("%d concurrent answers written in %d batches", n, batches)
}

// firstSeries is the first series of the metric called name.
func firstSeries(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// metricValue is the value of the first series of a counter or gauge.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	m := firstSeries(t, reg, name)
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestManyLearnedAddresses: one answer (or a re-apply) with 10,000 addresses is split
// into messages that fit and still goes in as one batch.
func TestManyLearnedAddresses(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	many := make([]netip.Addr, 10000)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
	}
	r.g.Learned("devices", client, "many.example", many, time.Hour)
	// Learned waits at most 250ms; under the race detector this batch takes longer.
	clocktest.WaitFor(t, "10,000 elements in seg_devices_v4", func() bool {
		return len(setElements(t, r.ns, "seg_devices_v4")) == len(many)
	})
	if got := histogramCount(t, r.reg, "patchgate_gateway_learn_batch_elements"); got != 1 {
		t.Errorf("%d batches for one answer, want 1", got)
	}
	if err := r.g.Reconfigure(testPolicy()); err != nil {
		t.Fatalf("Reconfigure with 10,000 learned addresses: %v", err)
	}
	if got := len(setElements(t, r.ns, "seg_devices_v4")); got != len(many) {
		t.Errorf("seg_devices_v4 holds %d elements after a re-apply, want %d", got, len(many))
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	return firstSeries(t, reg, name).GetHistogram().GetSampleCount()
}

func TestReapplyKeepsLearnedAndCounters(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	localLink(t, r.ns)
	if sendUDP(t, r.ns, "192.0.2.99", 9) {
		t.Fatal("the appliance sent to 192.0.2.99, which is no egress destination")
	}
	if !sendUDP(t, r.ns, "192.0.2.80", 9) {
		t.Fatal("the appliance could not send to its repository 192.0.2.80")
	}
	denied := counterPackets(t, r.ns, outputDenied)
	if denied == 0 {
		t.Fatal("output_denied is 0 after a denied datagram")
	}
	r.g.Learned("devices", client, "keep.example", []netip.Addr{netip.MustParseAddr("198.51.100.40")}, time.Hour)

	// Reload with one more segment: same table, new sets; old state kept.
	p := testPolicy()
	p.Segments = append(p.Segments, Segment{Name: "printers", Device: "dev1", Clients: []netip.Prefix{netip.MustParsePrefix("10.40.0.0/24")}})
	if err := r.g.Reconfigure(p); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	if got := counterPackets(t, r.ns, outputDenied); got != denied {
		t.Errorf("output_denied after re-apply = %d, want %d kept", got, denied)
	}
	if got := setElements(t, r.ns, "seg_devices_v4"); got["10.30.0.10 . 198.51.100.40"] == 0 {
		t.Errorf("learned 198.51.100.40 lost by re-apply: %v", got)
	}
	if _, err := nftIn(t, r.ns, "", "list", "chain", "inet", TableName, "seg_printers"); err != nil {
		t.Errorf("new segment's chain missing after re-apply: %v", err)
	}
	// Dropping the segment drops its learned addresses with its set.
	if err := r.g.Reconfigure(Policy{Grace: time.Second, MaxTimeout: time.Hour, Stats: time.Minute, Refresh: time.Hour}); err != nil {
		t.Fatalf("Reconfigure(empty): %v", err)
	}
	if _, err := nftIn(t, r.ns, "", "list", "set", "inet", TableName, "seg_devices_v4"); err == nil {
		t.Error("seg_devices_v4 still there after its segment was removed from the policy")
	}
}

func TestDeniedOutputIsLogged(t *testing.T) {
	r := startGateway(t, testPolicy(), nil)
	localLink(t, r.ns)
	sendUDP(t, r.ns, "192.0.2.77", 4242)
	clocktest.WaitFor(t, "the denied datagram in the log", func() bool {
		return strings.Contains(r.logs.String(), "denied the appliance's own connection")
	})
	logs := r.logs.String()
	for _, want := range []string{"dst=192.0.2.77", "proto=udp", "port=4242"} {
		if !strings.Contains(logs, want) {
			t.Errorf("deny log lacks %q:\n%s", want, logs)
		}
	}
}

func TestTableRemovedBySomeoneElseIsRepaired(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	r := startGateway(t, testPolicy(), clk)
	r.g.Learned("devices", client, "keep.example", []netip.Addr{netip.MustParseAddr("198.51.100.50")}, time.Hour)
	mustNft(t, r.ns, "", "flush", "ruleset")
	clk.Advance(time.Minute) // the stats tick notices
	clocktest.WaitFor(t, "the table back", func() bool {
		out, err := nftIn(t, r.ns, "", "list", "set", "inet", TableName, "seg_devices_v4")
		return err == nil && strings.Contains(out, "10.30.0.10 . 198.51.100.50")
	})
}

// TestNoCapabilityIsAClearError runs New in a child process as user nobody, which has
// no CAP_NET_ADMIN. The child asks the kernel only to list tables of its own namespace.
func TestNoCapabilityIsAClearError(t *testing.T) {
	if os.Getenv("PG_GATEWAY_NOCAP_CHILD") == "1" {
		_, err := New(Policy{}, Options{})
		fmt.Println(err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops to user nobody to lose CAP_NET_ADMIN")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	exe, _ := os.Executable()
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		exe, "-test.run=^TestNoCapabilityIsAClearError$")
	cmd.Env = append(os.Environ(), "PG_GATEWAY_NOCAP_CHILD=1")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "needs CAP_NET_ADMIN") {
		t.Errorf("New without CAP_NET_ADMIN said %q, want a message naming CAP_NET_ADMIN", out)
	}
}

func TestExplain(t *testing.T) {
	if err := explain(unix.EPERM); !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Errorf("explain(EPERM) = %v", err)
	}
	if err := explain(unix.ENOENT); err != unix.ENOENT {
		t.Errorf("explain(ENOENT) = %v, want it unchanged", err)
	}
}

// TestApplyFailureIsAHealthError: a ruleset the kernel refuses (a log prefix over its
// 127 characters, which config validation would not let through) leaves the gateway
// not ready with an error naming the problem; a good policy then recovers it. Answers
// learned before Run are in the first ruleset applied.
func TestApplyFailureIsAHealthError(t *testing.T) {
	ns, fd := newNetNS(t)
	bad := testPolicy()
	bad.Segments[0].Name = strings.Repeat("x", 120)
	clk := clock.NewFake(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	g, err := New(bad, Options{Clock: clk, Registry: reg, NetNS: fd})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Learned("", netip.Addr{}, "early.example", []netip.Addr{netip.MustParseAddr("198.51.100.60")}, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	clocktest.WaitFor(t, "the apply error in Health", func() bool {
		h := g.Health()
		return len(h) > 0 && h[0].Code == "gateway-not-applied"
	})
	if g.Ready() {
		t.Error("Ready() = true with no ruleset applied")
	}
	if got := metricValue(t, reg, "patchgate_gateway_ruleset_applied"); got != 0 {
		t.Errorf("patchgate_gateway_ruleset_applied = %v, want 0", got)
	}
	if _, err := nftIn(t, ns, "", "list", "table", "inet", TableName); err == nil {
		t.Error("a table exists although the batch failed (it must be all or nothing)")
	}
	if err := g.Reconfigure(testPolicy()); err != nil {
		t.Fatalf("Reconfigure(good): %v", err)
	}
	if !g.Ready() || len(g.Health()) != 0 {
		t.Errorf("after a good policy: Ready %v, Health %v; want ready and healthy", g.Ready(), g.Health())
	}
	if got := setElements(t, ns, "own_v4"); got["198.51.100.60"] == 0 {
		t.Errorf("answer learned before Run missing from the first ruleset: %v", got)
	}
}
