package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agent/agenttest"
	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// The staged rollout end to end, on loopback: a real TUF upstream (tuftest), the whole
// appliance (appliance.New on the dev config, listeners on port 0, the gate enforced,
// a fake clock), and two real agents in different rings, each from its own loopback
// address (127.0.0.2 pilot, 127.0.0.3 core) so the appliance's per-segment byte count
// can say who got what. The test drives the agents' rounds and the engine's ticks
// itself, and moves the fake clock across the soak.

const (
	repoName   = "vendor"
	targetPath = "pkgs/tool_1.1.deb"
	pilotAddr  = "127.0.0.2"
	coreAddr   = "127.0.0.3"
	soak       = 2 * time.Hour
)

// installerEnv makes the test binary act as an install command (TestInstallerHelper);
// failEnv names the agent whose installer exits 1.
const (
	installerEnv = "PATCHGATE_E2E_INSTALLER_LOG"
	failEnv      = "PATCHGATE_E2E_INSTALLER_FAILS"
)

// TestInstallerHelper is not a test: run as an agent's install command (the one signed
// with the target) it records the sha256 of the file it was given and which agent ran
// it (the name of the agent's state directory, which holds the download), then exits
// 1 for the agent failEnv names and 0 for the others.
func TestInstallerHelper(t *testing.T) {
	logFile := os.Getenv(installerEnv)
	if logFile == "" {
		t.Skip("only runs as an install command")
	}
	args, sum := agenttest.InstallArgs()
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(4)
	}
	name := filepath.Base(filepath.Dir(filepath.Dir(args[0]))) // STATE/downloads/FILE
	fmt.Fprintf(f, "%s %s\n", name, sum)
	f.Close()
	fmt.Println("installed", filepath.Base(args[0]))
	if os.Getenv(failEnv) == name {
		os.Exit(1)
	}
	os.Exit(0)
}

// site is one appliance with its upstream and agents.
type site struct {
	t        *testing.T
	repo     *tuftest.Repo
	data     []byte
	sys      *appliance.System
	eng      *rollout.Engine
	clk      *clock.Fake
	dir      string
	installs string            // the helper installer's log
	roots    map[string]string // the agents' trusted roots: repository -> root.json
}

func newSite(t *testing.T, mods ...func(*config.Config)) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), data: bytes.Repeat([]byte("tool 1.1 package "), 30_000)} // 510 KB
	s.repo = tuftest.New(t)
	// The install command is signed with the target; agents allow the test binary.
	custom, err := agentapi.WithInstructions(nil, agentapi.Instructions{Install: map[string]agentapi.Step{
		runtime.GOOS: {Command: []string{os.Args[0], "-test.run=^TestInstallerHelper$", "--", agentapi.FilePlaceholder}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.repo.AddTargetContent("targets", targetPath, tuftest.Bytes(s.data), custom)
	s.repo.Publish()
	root := filepath.Join(s.dir, "vendor-root.json")
	if err := os.WriteFile(root, s.repo.Root(), 0o600); err != nil {
		t.Fatal(err)
	}
	s.roots = map[string]string{repoName: root}
	s.installs = filepath.Join(s.dir, "installs.log")
	t.Setenv(installerEnv, s.installs)

	cfg := baseConfig(t, s.dir)
	// One segment per agent, so that the shaper counts each one's bytes apart.
	cfg.Segments = []segment.Segment{
		{Name: "loopback", Clients: []conf.Prefix{conf.MustPrefix("127.0.0.1/32")}},
		{Name: "pilot", Clients: []conf.Prefix{conf.MustPrefix(pilotAddr + "/32")}},
		{Name: "core", Clients: []conf.Prefix{conf.MustPrefix(coreAddr + "/32")}},
	}
	cfg.TUF.Repositories = []tuf.Repository{{Name: repoName, MetadataURL: s.repo.MetadataURL(), TargetsURL: s.repo.TargetsURL(), Root: root}}
	for _, m := range mods {
		m(cfg)
	}
	s.sys, s.clk = startAppliance(t, cfg)
	s.eng = s.sys.Rollout()
	return s
}

// baseConfig is the dev config on loopback ports 0 with its state in dir/appliance,
// no demo repository, the gate enforced and a rollout window that is always open
// (these tests are about rings, soak and supply, not windows).
func baseConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Load("../../configs/dev.yaml")
	if err != nil {
		t.Fatalf("load dev config: %v", err)
	}
	cfg.State.Dir = filepath.Join(dir, "appliance")
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Distribution.Listen = "127.0.0.1:0"
	cfg.Resolver.Listen = []string{"127.0.0.1:0"}
	cfg.Shutdown.Timeout = conf.Duration(5 * time.Second)
	cfg.TUF.Demo.Enabled = false
	cfg.Rollout.Gate = "enforce"
	cfg.Rollout.DefaultRing = ""
	cfg.Rollout.Windows = []rollout.SeedWindow{{Name: "always", Cron: "0 * * * *", Duration: conf.Duration(2 * time.Hour)}}
	return cfg
}

// startAppliance validates cfg, runs the appliance on a fake clock (starting at the
// real time: TUF metadata expiry is real) until the test ends, and waits until it is
// ready.
func startAppliance(t *testing.T, cfg *config.Config) (*appliance.System, *clock.Fake) {
	t.Helper()
	if ps := cfg.Validate(); len(ps) > 0 {
		// Both listeners on port 0 is the one expected complaint.
		for _, p := range ps {
			if p.Key != "distribution.listen" {
				t.Fatalf("config: %v", p)
			}
		}
	}
	clk := clock.NewFake(time.Now())
	sys, err := appliance.New(context.Background(), cfg, appliance.Options{Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("appliance.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("appliance Run: %v", err)
		}
		sys.Close()
	})
	if sys.Rollout() == nil {
		t.Fatal("the appliance has no rollout engine")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !sys.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("appliance not ready after 20s")
		}
		time.Sleep(20 * time.Millisecond) // readiness is the appliance's own, in real time
	}
	return sys, clk
}

// endpoint is one agent and what its HTTP client received of target bodies.
type endpoint struct {
	name   string
	addr   string
	agent  *agent.Agent
	state  string
	target atomic.Int64 // target body bytes received
}

// newAgent enrols an agent in ring from source address addr; its installer exits 1
// when exit is not 0.
func (s *site) newAgent(name, ring, addr string, exit int) *endpoint {
	t := s.t
	t.Helper()
	tok, _, err := s.eng.CreateToken(context.Background(), "dora", name+" token", ring, nil, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	ep := &endpoint{name: name, addr: addr, state: filepath.Join(s.dir, name)}
	if exit != 0 {
		t.Setenv(failEnv, name)
	}
	tokFile := filepath.Join(s.dir, name+"-token")
	os.WriteFile(tokFile, []byte(tok), 0o600)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
	hc := &http.Client{Transport: &countingTransport{rt: &http.Transport{DialContext: d.DialContext}, n: &ep.target}}
	t.Cleanup(hc.CloseIdleConnections)
	a, err := agent.New(agent.Config{
		Appliance:     "http://" + s.sys.DistributionAddr(),
		TokenFile:     tokFile,
		StateDir:      ep.state,
		Repos:         s.roots,
		AllowCommands: []string{os.Args[0]},
	}, agent.Options{Logger: slog.New(slog.DiscardHandler), Version: "e2e", HTTPClient: hc,
		Facts: func(context.Context) agentapi.Facts { return agentapi.Facts{Hostname: name, OS: "linux"} }})
	if err != nil {
		t.Fatal(err)
	}
	ep.agent = a
	return ep
}

// countingTransport counts the body bytes of target responses.
type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil && strings.Contains(r.URL.Path, "/targets/") {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// cycle runs one round of ep's agent.
func (s *site) cycle(ep *endpoint) {
	s.t.Helper()
	if _, err := ep.agent.Cycle(context.Background()); err != nil {
		s.t.Fatalf("%s: Cycle: %v", ep.name, err)
	}
}

// tick evaluates the rollouts now. The engine also ticks by itself when the fake clock
// passes its tick interval, concurrently; a tick that finds the other one moved the
// stage first fails, and the next one sees the result.
func (s *site) tick() {
	s.t.Helper()
	err := s.eng.Tick(context.Background())
	if err != nil {
		s.t.Logf("Tick: %v; again", err)
		err = s.eng.Tick(context.Background())
	}
	if err != nil {
		s.t.Fatalf("Tick: %v", err)
	}
}

// served is what the appliance's shaper counted as served to a segment.
func (s *site) served(segment string) float64 {
	return s.counter("patchgate_shaper_served_bytes_total", "segment", segment)
}

// counter is the value of the appliance's counter name whose label is value (0 when
// there is none yet).
func (s *site) counter(name, label, value string) float64 {
	s.t.Helper()
	mfs, err := s.sys.Registry().Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// installed lists "agent sha256" lines the installer wrote.
func (s *site) installed() []string {
	data, _ := os.ReadFile(s.installs)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// directGet asks for the target with ep's own credential, as a device would without
// waiting for an offer, and returns the status and the body length.
func (s *site) directGet(ep *endpoint) (int, int) {
	s.t.Helper()
	c := s.deviceClient(ep)
	resp, err := c.Get("http://" + s.sys.DistributionAddr() + "/repos/" + repoName + "/targets/" + targetPath)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, len(body)
	}
	return resp.StatusCode, 0
}

// deviceClient is an HTTP client that connects from ep's address and sends ep's own
// credential, as any client on that device would.
func (s *site) deviceClient(ep *endpoint) *http.Client {
	s.t.Helper()
	data, err := os.ReadFile(filepath.Join(ep.state, "credential"))
	if err != nil {
		s.t.Fatal(err)
	}
	var cred struct{ Credential string }
	json.Unmarshal(data, &cred)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ep.addr)}}
	c := &http.Client{Transport: &bearer{rt: &http.Transport{DialContext: d.DialContext}, token: cred.Credential}}
	s.t.Cleanup(c.CloseIdleConnections)
	return c
}

// bearer sends token as each request's bearer credential.
type bearer struct {
	rt    http.RoundTripper
	token string
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

// startRollout creates, approves and schedules a rollout of the target to pilot then
// core, and ticks the engine once so the pilot stage starts.
func (s *site) startRollout() int64 {
	t := s.t
	t.Helper()
	ctx := context.Background()
	rel, err := s.eng.CreateRelease(ctx, "rita", rollout.Release{Name: "tool 1.1", Version: "1.1", Repo: repoName,
		Targets: []string{targetPath}, Severity: rollout.High})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.eng.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel.ID, Risk: "low", TestEvidence: "lab install", RollbackPlan: "reinstall 1.0",
		Stages: []rollout.Stage{
			{Ring: "pilot", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1, Soak: rollout.Duration(soak)},
			{Ring: "core", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Submit(ctx, r.ID, "rita"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Approve(ctx, r.ID, "anna", "tested in the lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Schedule(ctx, r.ID, "dora", time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.tick()
	return r.ID
}

func (s *site) rollout(id int64) *rollout.Rollout {
	s.t.Helper()
	r, err := s.eng.Rollout(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// waitMirrored waits until the appliance's mirror has verified the upstream metadata
// (its first refresh runs when the appliance starts).
func (s *site) waitMirrored() {
	s.t.Helper()
	url := "http://" + s.sys.DistributionAddr() + "/repos/" + repoName + "/metadata/timestamp.json"
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the mirror has no verified metadata after 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the mirror's first refresh, in real time
	}
}

func TestRolloutPilotThenCoreAfterSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole appliance")
	}
	s := newSite(t)
	s.waitMirrored()
	pilot := s.newAgent("pilot-ws", "pilot", pilotAddr, 0)
	core := s.newAgent("core-ws", "core", coreAddr, 0)
	s.cycle(pilot) // enrol and check in: the devices are known and in their rings
	s.cycle(core)
	id := s.startRollout()
	sum := sha256.Sum256(s.data)
	hexSum := hex.EncodeToString(sum[:])

	// The pilot gets, verifies and installs the release.
	s.cycle(pilot)
	if got := s.installed(); len(got) != 1 || got[0] != "pilot-ws "+hexSum {
		t.Fatalf("installs after the pilot's round = %q, want the pilot installing %s", got, hexSum)
	}
	s.tick()

	// The core ring waits for the soak: nothing offered, a direct request refused,
	// and not a byte of the target sent to it.
	for _, step := range []time.Duration{0, soak / 2, soak/2 - time.Minute} {
		s.clk.Advance(step)
		s.tick()
		s.cycle(core)
		if code, n := s.directGet(core); code != http.StatusServiceUnavailable || n != 0 {
			t.Errorf("core asking %s into the soak: %d with %d bytes, want 503 and none", s.clk.Now().Sub(s.rollout(id).CreatedAt).Round(time.Minute), code, n)
		}
		if got := s.served("core"); got != 0 || core.target.Load() != 0 {
			t.Fatalf("during the soak the appliance served core %v bytes (its agent read %d), want none", got, core.target.Load())
		}
	}
	if len(s.installed()) != 1 {
		t.Fatalf("installs during the soak = %q, want only the pilot's", s.installed())
	}
	if got := s.served("pilot"); got != float64(len(s.data)) {
		t.Errorf("served to the pilot segment: %v bytes, want %d", got, len(s.data))
	}

	// After the soak the core ring is released.
	s.clk.Advance(2 * time.Minute)
	s.tick()
	s.cycle(core)
	if got := s.installed(); len(got) != 2 || got[1] != "core-ws "+hexSum {
		t.Fatalf("installs after the soak = %q, want the core installing %s", got, hexSum)
	}
	if got := s.served("core"); got != float64(len(s.data)) {
		t.Errorf("served to the core segment after the soak: %v bytes, want %d", got, len(s.data))
	}
	s.tick()
	if r := s.rollout(id); r.State != rollout.Completed {
		t.Errorf("rollout is %s after both rings succeeded, want completed", r.State)
	}
	if gets := s.repo.TargetGets(targetPath); gets != 1 {
		t.Errorf("the upstream served the target %d times, want once (the cache serves the rest)", gets)
	}
}

func TestRolloutFailingPilotPausesAndCoreNeverGetsBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole appliance")
	}
	s := newSite(t)
	s.waitMirrored()
	pilot := s.newAgent("pilot-ws", "pilot", pilotAddr, 1) // its installer fails
	core := s.newAgent("core-ws", "core", coreAddr, 0)
	s.cycle(pilot)
	s.cycle(core)
	id := s.startRollout()

	s.cycle(pilot)
	if got := s.installed(); len(got) != 1 || !strings.HasPrefix(got[0], "pilot-ws ") {
		t.Fatalf("installs = %q, want the pilot's one attempt", got)
	}
	s.tick()
	r := s.rollout(id)
	if r.State != rollout.Paused {
		t.Fatalf("rollout is %s after the pilot failed, want paused", r.State)
	}
	t.Logf("paused: %s", r.Reason)
	if r.Reason == "" {
		t.Error("the pause gives no reason")
	}
	ds, err := s.eng.Deployments(context.Background(), rollout.DeploymentFilter{RolloutID: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State == rollout.DepFailed && (d.ExitCode == nil || *d.ExitCode != 1) {
			t.Errorf("failed deployment %d records exit code %v, want the installer's 1", d.ID, d.ExitCode)
		}
	}

	// Long past the soak, the core ring still gets nothing.
	for range 3 {
		s.clk.Advance(soak)
		s.tick()
		s.cycle(core)
		s.cycle(pilot)
		if code, n := s.directGet(core); code/100 != 4 && code != http.StatusServiceUnavailable || n != 0 {
			t.Errorf("core asking while paused: %d with %d bytes, want a refusal", code, n)
		}
	}
	if r := s.rollout(id); r.State != rollout.Paused {
		t.Errorf("rollout is %s, want still paused", r.State)
	}
	if got := s.served("core"); got != 0 || core.target.Load() != 0 {
		t.Errorf("the appliance served core %v bytes (its agent read %d), want none", got, core.target.Load())
	}
	for _, l := range s.installed() {
		if strings.HasPrefix(l, "core-ws ") {
			t.Errorf("the core installed while the rollout was paused: %q", l)
		}
	}
}
