package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance/fleet"
	"github.com/patchgate/patchgate/appliance/rollout"
)

func TestSiteLabelOnEveryMetric(t *testing.T) {
	cfg := testConfig(t)
	cfg.Site = "north-7"
	sys, _, _ := startSystemWith(t, cfg)
	waitReady(t, sys)
	mfs, err := sys.MetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			site := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "site" {
					site = l.GetValue()
				}
			}
			if site != "north-7" {
				t.Errorf("%s: site label %q, want north-7", mf.GetName(), site)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no metrics gathered")
	}
	code, body := fetch(t, "GET", "http://"+sys.AdminAddr()+"/metrics", nil)
	if code != 200 || !strings.Contains(body, `site="north-7",version="test"`) {
		t.Errorf("/metrics lacks the site label:\n%.2000s", body)
	}
}

// fleetMetricNames are the metric names a child appliance has: the System's and the
// parent link's.
func fleetMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	sys := newSystem(t, testConfig(t), Options{})
	reg := prometheus.NewRegistry()
	p := fleet.DefaultParent()
	p.URL, p.Repositories, p.Roots = "http://127.0.0.1:1", []string{"vendor"}, t.TempDir()
	if _, err := fleet.New(fleet.Options{Parent: p, StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	// A parent's view of its children: its counter has a series once a child is sent
	// something.
	ch, err := fleet.NewChildren(fleet.ChildrenOptions{Agents: func(context.Context) ([]*rollout.Agent, error) { return nil, nil }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ch.Served(context.Background(), "ag-1", 1)
	for _, g := range []prometheus.Gatherer{sys.Registry(), reg} {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
	}
	return names
}

// patchgateName finds the patchgate metric names in a PromQL expression (not the
// recording rules' level:metric:operation names).
var patchgateName = regexp.MustCompile(`(?:^|[^:a-zA-Z0-9_])(patchgate_[a-z0-9_]+)\b(?:[^:]|$)`)

func metricNamesIn(expr string) []string {
	var out []string
	for _, m := range patchgateName.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_seconds") {
				name = base
			}
		}
		out = append(out, name)
	}
	return out
}

// TestFleetDashboard parses the shipped Grafana dashboard and checks that it is
// provisionable (uid, title, a Prometheus datasource variable, unique panel ids) and
// that every patchgate metric each panel queries exists in the appliance's registry.
func TestFleetDashboard(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/patchgate-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("patchgate-fleet.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard needs a uid, a title and panels: uid %q title %q, %d panels", dash.UID, dash.Title, len(dash.Panels))
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["site"] != "query" {
		t.Errorf("template variables %v: want datasource (datasource) and site (query)", vars)
	}
	names := fleetMetricNames(t)
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] || p.Title == "" || p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: want a unique id, a title, a type and queries", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			used := metricNamesIn(tg.Expr)
			if len(used) == 0 {
				t.Errorf("panel %q: query %q names no patchgate metric", p.Title, tg.Expr)
			}
			for _, n := range used {
				if !names[n] {
					t.Errorf("panel %q: metric %s is not in the appliance's registry", p.Title, n)
				}
			}
		}
	}
}

// TestFleetRules checks that the Prometheus rules name only metrics the appliance has
// and, when promtool is installed (CI installs Debian's prometheus), runs their unit
// tests with it.
func TestFleetRules(t *testing.T) {
	data, err := os.ReadFile("../deploy/prometheus/patchgate-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("patchgate-rules.yml: %v", err)
	}
	names := fleetMetricNames(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricNamesIn(r.Expr) {
				if !names[m] {
					t.Errorf("rule %s%s: metric %s is not in the appliance's registry", r.Record, r.Alert, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): the rules' unit tests did not run")
	}
	out, err := exec.Command(promtool, "test", "rules", "../deploy/prometheus/patchgate-rules.test.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

func TestShaperClientKey(t *testing.T) {
	tests := []struct {
		name, authz, want string
	}{
		{"device: its address (the shaper's default)", "", ""},
		{"child: its credential's id", "Bearer pga1.ag-5b1f.secret", "agent:ag-5b1f"},
		{"not an agent credential", "Bearer pge1.tok.secret", ""},
		{"no id", "Bearer pga1..secret", ""},
		{"no secret part", "Bearer pga1.ag-1", ""},
		{"basic auth", "Basic YTpi", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/repos/demo/targets/a", nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			if got := shaperClientKey(r); got != tt.want {
				t.Errorf("shaperClientKey(%q) = %q, want %q", tt.authz, got, tt.want)
			}
		})
	}
}
