package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/agent"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error; none: valid
	}{
		{
			name: "valid, paths relative to the file",
			yaml: "appliance: http://10.10.0.2:8080\ntoken_file: token\nstate_dir: state\nrepos: {vendor: vendor-root.json}\nallow_commands: [/usr/bin/dpkg]\ninstall_timeout: 45m\n",
		},
		{
			name: "valid, local install commands",
			yaml: "appliance: http://10.10.0.2:8080\ntoken_file: token\nstate_dir: state\nrepos: {vendor: vendor-root.json}\nlocal_install: true\ninstall: [dpkg, -i, \"{{.File}}\"]\nreboot_command: [/sbin/reboot]\n",
		},
		{
			name: "every problem at once",
			yaml: "appliance: ftp://x\nrepos: {\"bad name\": \"\"}\nlocal_install: true\ncheck: [\"{{.File\"]\nallow_commands: [dpkg, /usr/bin/../bin/x]\nreboot_command: [\"\"]\n",
			want: []string{"appliance: must be an http(s) URL", "state_dir: must be set", "token_file: must be set", "repos.bad name: is not a repository name",
				"install: must be the install command when local_install is true", "check[0]:",
				`allow_commands[0]: must be a clean absolute path, got "dpkg"`, "allow_commands[1]: must be a clean absolute path", "reboot_command[0]: must name the program"},
		},
		{
			name: "nothing allowed to run",
			yaml: "appliance: http://x\ntoken_file: t\nstate_dir: s\nrepos: {v: r}\n",
			want: []string{"allow_commands: must list the programs signed install instructions may run"},
		},
		{
			name: "an old local install command without local_install",
			yaml: "appliance: http://x\ntoken_file: t\nstate_dir: s\nrepos: {v: r}\nallow_commands: [/usr/bin/dpkg]\ninstall: [dpkg, -i, \"{{.File}}\"]\n",
			want: []string{"install: install and check are used only with local_install: true"},
		},
		{
			name: "unknown key",
			yaml: "appliance: http://x\nintsall: [x]\n",
			want: []string{"field intsall not found"},
		},
		{
			name: "bad duration",
			yaml: "install_timeout: soon\n",
			want: []string{"want a duration like 30m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "agent.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o600)
			cfg, err := agent.LoadConfig(path)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				if cfg.StateDir != filepath.Join(dir, "state") || cfg.Repos["vendor"] != filepath.Join(dir, "vendor-root.json") {
					t.Errorf("relative paths not resolved against the file: %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadConfig: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadConfig error %q does not contain %q", err, w)
				}
			}
		})
	}
}
