package agentcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandRefusesABadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, "no such file"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"invalid config", []string{"--config", writeFile(t, "appliance: ftp://x\n")}, "appliance: must be an http(s) URL"},
		{"stray argument", []string{"extra"}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
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

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
