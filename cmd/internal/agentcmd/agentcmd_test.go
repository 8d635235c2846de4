package agentcmd

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCommandRefusesABadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
		unix bool // mode-based: Windows reads ACLs instead (agent.TestACLWriters)
	}{
		{"missing file", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, "no such file", false},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level", false},
		{"invalid config", []string{"--config", writeFile(t, "appliance: ftp://x\n", 0o600)}, "appliance: must be an http(s) URL", false},
		{"stray argument", []string{"extra"}, "unknown command", false},
		{"config writable by all", []string{"--config", writeFile(t, validConfig, 0o666)}, "is writable by every user (mode 0666)", true},
		{"config folder writable by the group", []string{"--config", writeFile(t, validConfig, 0o600, 0o770)}, "is writable by its group (mode 0770)", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.unix && runtime.GOOS == "windows" {
				t.Skip("mode-based check")
			}
			cmd := Command("patchgate-agent", "test")
			cmd.SetArgs(tc.args)
			cmd.SetOut(new(strings.Builder))
			cmd.SetErr(new(strings.Builder))
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: err = %v, want one containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// validConfig passes LoadConfig (the agent would then start).
const validConfig = "appliance: http://127.0.0.1:9\ntoken_file: token\nstate_dir: state\nrepos: {demo: root.json}\nallow_commands: [/usr/bin/dpkg]\n"

// writeFile writes agent.yaml with mode into a new folder, chmod-ed to dirMode[0] if given.
func writeFile(t *testing.T, data string, mode os.FileMode, dirMode ...os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is filtered by the umask
		t.Fatal(err)
	}
	if len(dirMode) > 0 {
		if err := os.Chmod(filepath.Dir(p), dirMode[0]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
