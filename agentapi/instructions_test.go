package agentapi_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/agentapi"
)

// instructions is the sample of the instructions golden files.
var instructions = agentapi.Instructions{Install: map[string]agentapi.Step{
	"linux": {Command: []string{"/usr/bin/dpkg", "-i", "{file}"}, Check: []string{"/usr/bin/dpkg-query", "-W", "openssl"},
		MinFreeBytes: 100 << 20},
	"windows": {Command: []string{`C:\Windows\System32\msiexec.exe`, "/i", "{file}", "/qn"}, Reboot: true},
}}

// TestParseInstructionsGolden reads testdata/target_custom.json, a target's whole
// custom metadata as `patchgate tuf add --instructions` writes it (with a key of
// another tool beside ours), and checks it gives the sample.
func TestParseInstructionsGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "target_custom.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := agentapi.ParseInstructions(data)
	if err != nil {
		t.Fatalf("ParseInstructions: %v", err)
	}
	if !reflect.DeepEqual(got, instructions) {
		t.Errorf("ParseInstructions = %+v, want %+v", got, instructions)
	}
	// WithInstructions puts the same value next to the other key.
	merged, err := agentapi.WithInstructions(json.RawMessage(`{"vendor":{"channel":"stable"}}`), instructions)
	if err != nil {
		t.Fatalf("WithInstructions: %v", err)
	}
	var a, b any
	json.Unmarshal(merged, &a)
	json.Unmarshal(data, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("WithInstructions = %s, want the content of target_custom.json", merged)
	}
	step, err := got.For("linux")
	if err != nil || step.MinFreeBytes != 100<<20 {
		t.Errorf("For(linux) = %+v, %v", step, err)
	}
	if _, err := got.For("darwin"); err == nil || !strings.Contains(err.Error(), "do not cover darwin (they cover linux, windows)") {
		t.Errorf("For(darwin) = %v, want it to name the OSes covered", err)
	}
	if args := agentapi.Expand(step.Command, "/var/x.deb"); !reflect.DeepEqual(args, []string{"/usr/bin/dpkg", "-i", "/var/x.deb"}) {
		t.Errorf("Expand = %q", args)
	}
}

func TestParseInstructionsRefuses(t *testing.T) {
	long := strings.Repeat("a", agentapi.MaxArgBytes+1)
	many, _ := json.Marshal(append([]string{"/bin/x"}, make([]string, agentapi.MaxArgs)...))
	tests := []struct {
		name   string
		custom string
		want   string // a part of the error; "" for ErrNoInstructions
	}{
		{"no custom", ``, ""},
		{"other keys only", `{"vendor": 1}`, ""},
		{"not an object", `[1]`, "custom metadata is not a JSON object"},
		{"null custom", `null`, "custom metadata is not a JSON object"},
		{"null instructions", `{"patchgate": null}`, "patchgate: must be an object"},
		{"unknown field", `{"patchgate": {"install": {"linux": {"command": ["/bin/x"], "shell": "rm -rf /"}}}}`, `unknown field "shell"`},
		{"unknown top field", `{"patchgate": {"install": {"linux": {"command": ["/bin/x"]}}, "env": {}}}`, `unknown field "env"`},
		{"no OS", `{"patchgate": {"install": {}}}`, "patchgate.install: must name at least one OS"},
		{"unknown OS", `{"patchgate": {"install": {"freebsd": {"command": ["/bin/x"]}}}}`, `patchgate.install.freebsd: unknown OS "freebsd"`},
		{"empty command", `{"patchgate": {"install": {"linux": {"command": []}}}}`, "patchgate.install.linux.command: must be a command"},
		{"shell string", `{"patchgate": {"install": {"linux": {"command": "dpkg -i x"}}}}`, "cannot unmarshal string"},
		{"relative program", `{"patchgate": {"install": {"linux": {"command": ["dpkg", "-i", "{file}"]}}}}`, "patchgate.install.linux.command[0]: must be the program's absolute path on linux"},
		{"empty program", `{"patchgate": {"install": {"linux": {"command": [""]}}}}`, "patchgate.install.linux.command[0]: must be the program's absolute path"},
		{"placeholder program", `{"patchgate": {"install": {"linux": {"command": ["/{file}"]}}}}`, "command[0]: must be the program's absolute path"},
		{"linux path on windows", `{"patchgate": {"install": {"windows": {"command": ["/usr/bin/x"]}}}}`, "patchgate.install.windows.command[0]: must be the program's absolute path on windows"},
		{"relative check", `{"patchgate": {"install": {"linux": {"command": ["/bin/x"], "check": ["test"]}}}}`, "patchgate.install.linux.check[0]:"},
		{"NUL in argument", `{"patchgate": {"install": {"linux": {"command": ["/bin/x", "a\u0000b"]}}}}`, "patchgate.install.linux.command[1]: not valid UTF-8 text without NUL bytes"},
		{"long argument", `{"patchgate": {"install": {"linux": {"command": ["/bin/x", "` + long + `"]}}}}`, "patchgate.install.linux.command[1]: longer than 4096 bytes"},
		{"many arguments", `{"patchgate": {"install": {"linux": {"command": ` + string(many) + `}}}}`, "patchgate.install.linux.command: at most 64 arguments, got 65"},
		{"negative size", `{"patchgate": {"install": {"linux": {"command": ["/bin/x"], "min_free_bytes": -1}}}}`, "patchgate.install.linux.min_free_bytes: must be 0-4398046511104, got -1"},
		{"absurd size", `{"patchgate": {"install": {"linux": {"command": ["/bin/x"], "min_free_bytes": 9000000000000000}}}}`, "patchgate.install.linux.min_free_bytes: must be 0-"},
		{"huge custom", `{"pad": "` + strings.Repeat("x", agentapi.MaxCustomBytes) + `"}`, "more than 65536"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agentapi.ParseInstructions([]byte(tc.custom))
			switch {
			case tc.want == "" && !errors.Is(err, agentapi.ErrNoInstructions):
				t.Errorf("ParseInstructions(%.80s) = %v, want ErrNoInstructions", tc.custom, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ParseInstructions(%.80s) = %v, want an error containing %q", tc.custom, err, tc.want)
			}
		})
	}
}

func TestWithInstructionsRefuses(t *testing.T) {
	tests := []struct {
		name   string
		custom string
		in     agentapi.Instructions
		want   string
	}{
		{"invalid instructions", `{}`, agentapi.Instructions{}, "install: must name at least one OS"},
		{"custom not an object", `"x"`, instructions, "custom metadata is not a JSON object"},
		{"key taken", `{"patchgate": 1}`, instructions, `already has a "patchgate" key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := agentapi.WithInstructions(json.RawMessage(tc.custom), tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WithInstructions = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseInstructions: no input panics; accepted instructions validate, name only
// known OSes with absolute programs, and survive a round trip through WithInstructions.
func FuzzParseInstructions(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "target_custom.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"patchgate": {"install": {"linux": {"command": ["/bin/x", "{file}"], "min_free_bytes": 5}}}}`))
	f.Add([]byte(`{"patchgate": {"install": {"windows": {"command": ["\\\\srv\\x.exe"]}}}}`))
	f.Add([]byte(`{"patchgate": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := agentapi.ParseInstructions(data)
		if err != nil {
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted instructions fail Validate: %v", err)
		}
		for os, s := range in.Install {
			if len(s.Command) == 0 || s.Command[0] == "" {
				t.Fatalf("accepted an empty command for %s", os)
			}
		}
		custom, err := agentapi.WithInstructions(nil, in)
		if err != nil {
			t.Fatalf("WithInstructions of accepted instructions: %v", err)
		}
		back, err := agentapi.ParseInstructions(custom)
		if err != nil || !reflect.DeepEqual(back, in) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, in)
		}
	})
}
