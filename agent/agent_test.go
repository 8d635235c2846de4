package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agent/agenttest"
	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// The agent is tested against a real TUF repository (tuftest) and a stand-in for the
// appliance's agent API, written from its contract (appliance/rollout/README.md): the
// real server is another package's and test/e2e runs the agent against it. Target
// and metadata requests are relayed to the TUF repository, so what the agent verifies
// is real signed metadata, and the stand-in can tamper with it.

// appliance is the stand-in. Its fields may be changed by the test between cycles.
type appliance struct {
	t    *testing.T
	repo *tuftest.Repo
	srv  *httptest.Server

	mu           sync.Mutex
	token        string
	creds        map[string]string // credential -> agent id
	offers       []agentapi.Offer
	progress     []string // "ID:state"
	outcomes     []agentapi.OutcomeRequest
	checkins     []agentapi.Facts
	targetGets   []string                                          // Range header of each target GET ("" for none)
	targetHook   func(w http.ResponseWriter, r *http.Request) bool // true: answered
	outcomeFails int                                               // answer this many outcome reports with 500
	progressHook func(state string) (int, string)                  // status and body to answer instead
	road         *road                                             // TLS and client certificates (road_test.go); nil: plain http
}

func newAppliance(t *testing.T, repo *tuftest.Repo) *appliance {
	a := &appliance{t: t, repo: repo, token: "pge1.test-token", creds: map[string]string{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *appliance) authed(r *http.Request) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && a.creds[cred] != "" && a.road.clientOK(r, a.creds[cred])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *appliance) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/repos/demo/metadata/"):
		name := strings.TrimPrefix(r.URL.EscapedPath(), "/repos/demo/metadata/")
		data := a.repo.Metadata(name)
		if data == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	case strings.HasPrefix(p, "/repos/demo/targets/"):
		if !a.authed(r) {
			writeJSON(w, 401, map[string]string{"error": "who are you"})
			return
		}
		a.mu.Lock()
		a.targetGets = append(a.targetGets, r.Header.Get("Range"))
		hook := a.targetHook
		a.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		resp, err := http.Get(a.repo.TargetsURL() + "/" + strings.TrimPrefix(p, "/repos/demo/targets/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	case p == "/agent/v1/enroll":
		var req agentapi.EnrollRequest
		json.NewDecoder(r.Body).Decode(&req)
		a.mu.Lock()
		defer a.mu.Unlock()
		if req.Token != a.token {
			writeJSON(w, 403, map[string]string{"error": "unknown enrolment token"})
			return
		}
		id := fmt.Sprintf("ag-%d", len(a.creds)+1)
		cred := "pga1." + id + ".secret"
		a.creds[cred] = id
		writeJSON(w, 200, agentapi.EnrollResponse{AgentID: id, Credential: cred, PollIntervalSeconds: 300, ClientCert: a.road.sign(req.CSR, id)})
	case p == "/agent/v1/checkin":
		if !a.authed(r) {
			writeJSON(w, 401, map[string]string{"error": "unknown credential"})
			return
		}
		var f agentapi.Facts
		json.NewDecoder(r.Body).Decode(&f)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.checkins = append(a.checkins, f)
		writeJSON(w, 200, agentapi.OffersResponse{AgentID: "ag-1", Ring: "pilot", PollIntervalSeconds: 300, Deployments: a.offers, RenewCertificate: a.road.renewDue()})
	case p == "/agent/v1/certificate":
		if !a.authed(r) {
			writeJSON(w, 401, map[string]string{"error": "unknown credential"})
			return
		}
		var req agentapi.RenewRequest
		json.NewDecoder(r.Body).Decode(&req)
		cred, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		id := a.creds[cred]
		a.mu.Unlock()
		writeJSON(w, 200, agentapi.RenewResponse{ClientCert: a.road.sign(req.CSR, id)})
	case p == "/agent/v1/deployments" && r.Method == http.MethodGet:
		if !a.authed(r) {
			writeJSON(w, 401, map[string]string{"error": "unknown credential"})
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		writeJSON(w, 200, agentapi.OffersResponse{Ring: "pilot", PollIntervalSeconds: 300, Deployments: a.offers})
	case strings.HasPrefix(p, "/agent/v1/deployments/"):
		if !a.authed(r) {
			writeJSON(w, 401, map[string]string{"error": "unknown credential"})
			return
		}
		rest := strings.TrimPrefix(p, "/agent/v1/deployments/")
		id, what, _ := strings.Cut(rest, "/")
		a.mu.Lock()
		defer a.mu.Unlock()
		switch what {
		case "progress":
			var req agentapi.ProgressRequest
			json.NewDecoder(r.Body).Decode(&req)
			if a.progressHook != nil {
				if status, body := a.progressHook(req.State); status != 0 {
					w.WriteHeader(status)
					io.WriteString(w, body)
					return
				}
			}
			a.progress = append(a.progress, id+":"+req.State)
			writeJSON(w, 200, map[string]string{"state": req.State})
		case "outcome":
			if a.outcomeFails > 0 {
				a.outcomeFails--
				writeJSON(w, 500, map[string]string{"error": "database is locked"})
				return
			}
			var req agentapi.OutcomeRequest
			json.NewDecoder(r.Body).Decode(&req)
			a.outcomes = append(a.outcomes, req)
			if req.Status != agentapi.OutcomePostponed {
				a.offers = nil // finished: no longer offered
			}
			writeJSON(w, 200, agentapi.OutcomeResponse{State: req.Status, Attempt: 1, MaxAttempts: 3})
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func (a *appliance) setOffers(offers ...agentapi.Offer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.offers = offers
}

func (a *appliance) snapshot() (progress []string, outcomes []agentapi.OutcomeRequest, gets []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.progress...), append([]agentapi.OutcomeRequest(nil), a.outcomes...), append([]string(nil), a.targetGets...)
}

// offer is a deployment of target path of the demo repository.
func offer(id int64, path string, download, install bool) agentapi.Offer {
	return agentapi.Offer{
		ID: id, RolloutID: 1, Repo: "demo", State: "offered", Attempt: 1, MaxAttempts: 3,
		Release:         agentapi.OfferRelease{ID: 1, Name: "tool 1.1", Version: "1.1", Severity: "high"},
		Targets:         []agentapi.OfferTarget{{Path: path, URL: "/repos/demo/targets/" + path}},
		DownloadAllowed: download, InstallAllowed: install,
		Window:            agentapi.OfferWindow{Open: install},
		RetryAfterSeconds: map[bool]int64{true: 0, false: 3600}[install],
	}
}

// helperEnv makes the test binary act as an installer (see TestHelperInstaller).
const helperEnv = "PATCHGATE_AGENT_TEST_INSTALLER"

// TestHelperInstaller is not a test: run as an install command, it appends the
// sha256 of its file argument to the log file named by the environment, prints some
// output and exits with the code the environment names.
func TestHelperInstaller(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as an install command")
	}
	args, sum := agenttest.InstallArgs()
	f, _ := os.OpenFile(os.Getenv(helperEnv), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	fmt.Fprintf(f, "%s %s\n", sum, os.Getenv("PATCHGATE_VERSION"))
	f.Close()
	for i := range 5000 { // more than the log tail keeps
		fmt.Printf("unpacking line %d\n", i)
	}
	fmt.Fprintln(os.Stderr, "done installing", filepath.Base(args[0]))
	code, _ := strconv.Atoi(os.Getenv("PATCHGATE_AGENT_TEST_EXIT"))
	os.Exit(code)
}

type env struct {
	repo   *tuftest.Repo
	app    *appliance
	cfg    agent.Config
	agent  *agent.Agent
	runLog string                       // what the helper installer ran
	free   func(string) (uint64, error) // the agent's FreeSpace (nil: the real one)
	opts   []func(*agent.Options)
}

// helperInstructions are signed install instructions that run the test binary as the
// installer (TestHelperInstaller).
func helperInstructions(t *testing.T) json.RawMessage {
	t.Helper()
	custom, err := agentapi.WithInstructions(nil, agentapi.Instructions{Install: map[string]agentapi.Step{
		runtime.GOOS: {Command: []string{os.Args[0], "-test.run=^TestHelperInstaller$", "--", agentapi.FilePlaceholder}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return custom
}

// newEnv serves data as pkgs/tool_1.1.deb, signed with instructions that run the
// helper installer, to an agent that allows them.
func newEnv(t *testing.T, data []byte) *env {
	t.Helper()
	return newEnvWith(t, data, helperInstructions(t), func(c *agent.Config) { c.AllowCommands = []string{os.Args[0]} })
}

// newEnvWith serves data as pkgs/tool_1.1.deb with custom metadata custom to an agent
// whose config configure finishes.
func newEnvWith(t *testing.T, data []byte, custom json.RawMessage, configure func(*agent.Config)) *env {
	t.Helper()
	repo := tuftest.New(t)
	repo.AddTargetContent("targets", "pkgs/tool_1.1.deb", tuftest.Bytes(data), custom)
	repo.Publish()
	e := &env{repo: repo, app: newAppliance(t, repo)}
	dir := t.TempDir()
	root := filepath.Join(dir, "demo-root.json")
	tok := filepath.Join(dir, "token")
	os.WriteFile(root, repo.Root(), 0o600)
	os.WriteFile(tok, []byte("pge1.test-token\n"), 0o600)
	e.runLog = filepath.Join(dir, "installed.log")
	t.Setenv(helperEnv, e.runLog)
	e.cfg = agent.Config{
		Appliance: e.app.srv.URL, TokenFile: tok, StateDir: filepath.Join(dir, "state"),
		Repos:          map[string]string{"demo": root},
		PowerSupplyDir: filepath.Join(dir, "no-power-supply"), // a desktop on mains
		RestorePoint:   "off",
	}
	configure(&e.cfg)
	e.start(t)
	return e
}

func (e *env) start(t *testing.T) { e.startWith(t, e.opts...) }

// startWith starts the agent with options changed by opts (kept for later restarts).
func (e *env) startWith(t *testing.T, opts ...func(*agent.Options)) {
	t.Helper()
	e.opts = opts
	o := agent.Options{
		Logger:  slog.New(slog.DiscardHandler),
		Version: "test",
		Facts: func(context.Context) agentapi.Facts {
			return agentapi.Facts{Hostname: "rx-ws-03", OS: "linux", Packages: []agentapi.Package{{Name: "openssl", Version: "3.0.13"}}}
		},
		FreeSpace: e.free,
	}
	for _, f := range opts {
		f(&o)
	}
	a, err := agent.New(e.cfg, o)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	e.agent = a
}

func (e *env) cycle(t *testing.T) time.Duration {
	t.Helper()
	next, err := e.agent.Cycle(context.Background())
	if err != nil {
		t.Fatalf("Cycle: %v", err)
	}
	return next
}

func (e *env) installs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(e.runLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(data), "\n", " "))
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func TestAgentEnrolsDownloadsVerifiesInstallsReports(t *testing.T) {
	data := bytes.Repeat([]byte("deb!"), 50_000)
	e := newEnv(t, data)
	e.app.setOffers(offer(42, "pkgs/tool_1.1.deb", true, true))

	if next := e.cycle(t); next != 300*time.Second {
		t.Errorf("next poll in %s, want the poll interval 5m0s", next)
	}
	if e.agent.ID() == "" {
		t.Error("agent has no id after the first cycle")
	}
	if diff := cmp.Diff([]string{sum(data), "1.1"}, e.installs(t)); diff != "" {
		t.Errorf("installer runs (-want +got):\n%s", diff)
	}
	progress, outcomes, _ := e.app.snapshot()
	if diff := cmp.Diff([]string{"42:downloading", "42:downloaded", "42:installing"}, progress); diff != "" {
		t.Errorf("progress reports (-want +got):\n%s", diff)
	}
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded || outcomes[0].ExitCode == nil || *outcomes[0].ExitCode != 0 {
		t.Fatalf("outcomes = %+v, want one succeeded with exit 0", outcomes)
	}
	tail := outcomes[0].LogTail
	if len(tail) > 64<<10 || !strings.Contains(tail, "done installing") || strings.Contains(tail, "unpacking line 0\n") {
		t.Errorf("log tail: %d bytes, want at most 64 KiB ending with the installer's last lines and without its first", len(tail))
	}
	if f := e.app.checkins; len(f) != 1 || f[0].Hostname != "rx-ws-03" || len(f[0].Packages) != 1 {
		t.Errorf("check-in facts = %+v", f)
	}

	// A new agent process with the same state directory keeps its credential.
	id := e.agent.ID()
	e.start(t)
	e.cycle(t)
	if e.agent.ID() != id || len(e.app.creds) != 1 {
		t.Errorf("after a restart: id %q (was %q), %d enrolments; want the same id and one enrolment", e.agent.ID(), id, len(e.app.creds))
	}
	if fi, err := os.Stat(filepath.Join(e.cfg.StateDir, "credential")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credential file: %v, %v; want mode 0600", fi, err)
	}
}

func TestAgentOutsideWindowOnlyPrestages(t *testing.T) {
	data := []byte("firmware image")
	e := newEnv(t, data)
	e.app.setOffers(offer(7, "pkgs/tool_1.1.deb", true, false))
	if next := e.cycle(t); next != 300*time.Second {
		t.Errorf("next poll in %s, want min(poll, retry_after) = 5m0s", next)
	}
	progress, outcomes, _ := e.app.snapshot()
	if diff := cmp.Diff([]string{"7:downloading", "7:downloaded"}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if len(outcomes) != 0 || len(e.installs(t)) != 0 {
		t.Errorf("installed outside the window: outcomes %+v, runs %v", outcomes, e.installs(t))
	}
	// Nothing may be downloaded while the offer says so.
	e2 := newEnv(t, data)
	e2.app.setOffers(offer(8, "pkgs/tool_1.1.deb", false, false))
	e2.cycle(t)
	if progress, _, gets := e2.app.snapshot(); len(progress) != 0 || len(gets) != 0 {
		t.Errorf("download not allowed: progress %v, target GETs %v; want none", progress, gets)
	}
}

func TestAgentHonoursRetryAfterAndResumes(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // 320 KB
	e := newEnv(t, data)
	e.app.setOffers(offer(9, "pkgs/tool_1.1.deb", true, true))
	calls := 0
	e.app.targetHook = func(w http.ResponseWriter, r *http.Request) bool {
		calls++
		switch calls {
		case 1: // too many concurrent downloads
			w.Header().Set("Retry-After", "42")
			writeJSON(w, 503, map[string]string{"error": "not now"})
			return true
		case 2: // the connection drops after 100000 bytes
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(200)
			w.Write(data[:100_000])
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return true
		}
		return false
	}
	if next := e.cycle(t); next != 42*time.Second {
		t.Errorf("after a 503 with Retry-After: 42, next poll in %s, want 42s", next)
	}
	if _, outcomes, _ := e.app.snapshot(); len(outcomes) != 0 {
		t.Fatalf("outcome after a 503: %+v", outcomes)
	}
	e.cycle(t)
	_, outcomes, gets := e.app.snapshot()
	if diff := cmp.Diff([]string{"", "", "bytes=100000-"}, gets); diff != "" {
		t.Errorf("Range headers of the target GETs (-want +got):\n%s", diff)
	}
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded {
		t.Errorf("outcomes = %+v, want one success", outcomes)
	}
	if got := e.installs(t); len(got) != 2 || got[0] != sum(data) {
		t.Errorf("installed %v, want the verified bytes %s", got, sum(data))
	}
}

func TestAgentRefusesWhatTUFDoesNotVouchFor(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(e *env)
		detail string
	}{
		{
			name: "target bytes changed by the appliance",
			tamper: func(e *env) {
				e.app.targetHook = func(w http.ResponseWriter, r *http.Request) bool {
					w.Write(bytes.Repeat([]byte("evil"), 25)) // same length, other bytes
					return true
				}
			},
			detail: "does not match its TUF metadata",
		},
		{
			name: "target longer than listed",
			tamper: func(e *env) {
				e.app.targetHook = func(w http.ResponseWriter, r *http.Request) bool {
					w.Write(bytes.Repeat([]byte("good"), 26))
					return true
				}
			},
			detail: "does not match its TUF metadata",
		},
		{
			name: "targets metadata re-signed by the appliance",
			tamper: func(e *env) {
				// The appliance swaps in metadata signed with a key the root does not list.
				e.repo.SignWith("targets", tuftest.NewKey())
				e.repo.AddTarget("pkgs/tool_1.1.deb", bytes.Repeat([]byte("evil"), 25))
				e.repo.Publish()
			},
			detail: "TUF verification of the metadata failed",
		},
		{
			name: "target not in the metadata",
			tamper: func(e *env) {
				e.app.setOffers(offer(5, "pkgs/other.deb", true, true))
			},
			detail: "TUF verification of the metadata failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, bytes.Repeat([]byte("good"), 25))
			e.app.setOffers(offer(5, "pkgs/tool_1.1.deb", true, true))
			tc.tamper(e)
			_, err := e.agent.Cycle(context.Background())
			if err == nil {
				t.Error("Cycle: no error, want the verification failure")
			}
			_, outcomes, _ := e.app.snapshot()
			if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeFailed || !strings.Contains(outcomes[0].Detail, tc.detail) {
				t.Errorf("outcomes = %+v, want one failure mentioning %q", outcomes, tc.detail)
			}
			if runs := e.installs(t); len(runs) != 0 {
				t.Errorf("installer ran on unverified bytes: %v", runs)
			}
			files, _ := filepath.Glob(filepath.Join(e.cfg.StateDir, "downloads", "*"))
			if len(files) != 0 {
				t.Errorf("unverified bytes kept: %v", files)
			}
		})
	}
}

func TestAgentReportsFailureAndResendsLostOutcome(t *testing.T) {
	data := []byte("patch")
	e := newEnv(t, data)
	t.Setenv("PATCHGATE_AGENT_TEST_EXIT", "17")
	e.app.setOffers(offer(11, "pkgs/tool_1.1.deb", true, true))
	e.app.outcomeFails = 1
	if _, err := e.agent.Cycle(context.Background()); err == nil {
		t.Error("Cycle with the outcome refused: no error")
	}
	// Next cycle: the offer is still there; the outcome is sent again, not the install.
	e.cycle(t)
	_, outcomes, _ := e.app.snapshot()
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeFailed || outcomes[0].ExitCode == nil || *outcomes[0].ExitCode != 17 {
		t.Errorf("outcomes = %+v, want one failure with exit code 17", outcomes)
	}
	if runs := e.installs(t); len(runs) != 2 {
		t.Errorf("installer ran %d times, want once", len(runs)/2)
	}
}

func TestAgentWaitsWhenInstallingIsRefused(t *testing.T) {
	e := newEnv(t, []byte("patch"))
	e.app.setOffers(offer(12, "pkgs/tool_1.1.deb", true, true))
	e.app.progressHook = func(state string) (int, string) {
		if state == agentapi.StateInstalling {
			return 409, `{"error": "the window closed", "retry_after_seconds": 60}`
		}
		return 0, ""
	}
	if next := e.cycle(t); next != time.Minute {
		t.Errorf("next poll in %s, want the 1m0s the 409 asked for", next)
	}
	if runs := e.installs(t); len(runs) != 0 {
		t.Errorf("installed although the appliance refused: %v", runs)
	}
}

func TestAgentReenrolsWhenCredentialRevoked(t *testing.T) {
	e := newEnv(t, []byte("x"))
	e.cycle(t)
	first := e.agent.ID()
	e.app.mu.Lock()
	e.app.creds = map[string]string{"other": "x"} // revoke everything
	e.app.mu.Unlock()
	e.cycle(t)
	if e.agent.ID() == "" || e.agent.ID() == first && len(e.app.creds) != 2 {
		t.Errorf("after revocation: id %q (was %q), credentials %v", e.agent.ID(), first, e.app.creds)
	}
	// A refused token stops Run with the error.
	os.Remove(filepath.Join(e.cfg.StateDir, "credential"))
	e.app.mu.Lock()
	e.app.token = "another"
	e.app.mu.Unlock()
	e.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.agent.Run(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Run with a refused token = %v, want the 403", err)
	}
}
