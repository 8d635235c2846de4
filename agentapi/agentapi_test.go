package agentapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the samples")

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var offer = agentapi.Offer{
	ID: 42, RolloutID: 7, Repo: "demo", State: agentapi.StateOffered, Attempt: 1, MaxAttempts: 3,
	Release: agentapi.OfferRelease{ID: 3, Name: "openssl 3.0.14", Version: "3.0.14", Severity: "critical",
		CVEs: []string{"CVE-2024-5535"}},
	Targets:         []agentapi.OfferTarget{{Path: "pkgs/openssl_3.0.14_amd64.deb", URL: "/repos/demo/targets/pkgs/openssl_3.0.14_amd64.deb"}},
	DownloadAllowed: true,
	Window:          agentapi.OfferWindow{OpensAt: at("2026-03-09T03:00:00Z"), ClosesAt: at("2026-03-09T07:00:00Z")},
	Deadline:        at("2026-03-11T09:00:00Z"), RetryAfterSeconds: 5400,
}

// samples are one value of every body, as the contract (appliance/rollout/README.md)
// shows them; testdata/NAME.json is each one's JSON, indented as the appliance writes it.
var samples = []struct {
	name  string
	value any
}{
	{"enroll_request", agentapi.EnrollRequest{Token: "pge1.7f3c.secret", Facts: agentapi.Facts{
		Hostname: "rx-ws-03", OS: "linux", OSVersion: "Debian GNU/Linux 13", Arch: "amd64", AgentVersion: "0.1.0"}}},
	{"enroll_response", agentapi.EnrollResponse{AgentID: "ag-5b1f0c2d9e7a4410", Credential: "pga1.ag-5b1f0c2d9e7a4410.Zm9vYmFy", PollIntervalSeconds: 300}},
	{"facts", agentapi.Facts{Hostname: "rx-ws-03", OS: "windows", OSVersion: "Windows 11 Pro", OSBuild: "26100.2314",
		Arch: "amd64", AgentVersion: "0.1.0", Serial: "5CG1234XYZ", Packages: []agentapi.Package{{Name: "openssl", Version: "3.0.13"}}}},
	{"checkin_response", agentapi.OffersResponse{AgentID: "ag-5b1f0c2d9e7a4410", AssetID: "agent:ag-5b1f0c2d9e7a4410",
		Ring: "pilot", PollIntervalSeconds: 300, Deployments: []agentapi.Offer{offer}}},
	{"deployments_response", agentapi.OffersResponse{Ring: "pilot", PollIntervalSeconds: 300, Deployments: []agentapi.Offer{}}},
	{"progress_request", agentapi.ProgressRequest{State: agentapi.StateInstalling, Detail: "running dpkg"}},
	{"progress_response", agentapi.ProgressResponse{State: agentapi.StateInstalling}},
	{"outcome_request", agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(1),
		LogTail: "dpkg: error processing package openssl", Detail: "the installer failed"}},
	{"outcome_response", agentapi.OutcomeResponse{State: "failed", Attempt: 1, MaxAttempts: 3, RetryAt: at("2026-03-09T03:10:00Z")}},
	{"error", agentapi.Error{Error: "deployment 42: not allowed in this state: installing is not allowed now", RetryAfterSeconds: 36000}},
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return append(b, '\n')
}

// TestGolden pins the wire format: every sample encodes to its golden file, and every
// golden file decodes (with no field unknown) and encodes back byte for byte.
func TestGolden(t *testing.T) {
	for _, tc := range samples {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.name+".json")
			got := encode(t, tc.value)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%T encodes as\n%s\nwant (%s)\n%s", tc.value, got, path, want)
			}
			back := reflect.New(reflect.TypeOf(tc.value))
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatalf("decode %s into %T: %v", path, tc.value, err)
			}
			if again := encode(t, back.Elem().Interface()); !bytes.Equal(again, want) {
				t.Errorf("%s does not round-trip through %T:\n%s", path, tc.value, again)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 201)
	many := make([]agentapi.Package, 5001)
	for i := range many {
		many[i] = agentapi.Package{Name: "p"}
	}
	tests := []struct {
		name  string
		facts agentapi.Facts
		want  string // "" for valid
	}{
		{"hostname only", agentapi.Facts{Hostname: "rx-ws-03"}, ""},
		{"every fact", agentapi.Facts{Hostname: "h", OS: "linux", OSVersion: "13", OSBuild: "b", Arch: "arm64",
			AgentVersion: "0.1", Serial: "s", Packages: []agentapi.Package{{Name: "openssl", Version: "3"}}}, ""},
		{"no hostname", agentapi.Facts{}, "hostname: must be 1-253 characters"},
		{"hostname too long", agentapi.Facts{Hostname: strings.Repeat("h", 254)}, "hostname: must be 1-253 characters"},
		{"fact too long", agentapi.Facts{Hostname: "h", Serial: long}, "a fact is longer than 200 characters"},
		{"too many packages", agentapi.Facts{Hostname: "h", Packages: many}, "packages: at most 5000, got 5001"},
		{"package without a name", agentapi.Facts{Hostname: "h", Packages: []agentapi.Package{{Name: "a"}, {Version: "1"}}},
			"packages[1]: name must be 1-200 and version at most 200 characters"},
		{"package version too long", agentapi.Facts{Hostname: "h", Packages: []agentapi.Package{{Name: "a", Version: long}}},
			"packages[0]: name must be 1-200 and version at most 200 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.facts.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}
