// Package test holds Patchgate's end-to-end tests and the checks that span the module.
package test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/patchgate/patchgate"

// allowed says which of the project's packages a package may import, by DESIGN.md:
// cmd -> appliance -> appliance/* -> {cache, tuf, netscan, image/abupdate}; agent -> tuf;
// cache -> tuf; cache, tuf and netscan import nothing else of the project's;
// appliance/rollout does not import cache, and appliance/rollout and appliance/auth do not
// import each other (the wiring connects them); nothing
// imports appliance but cmd (and the end-to-end tests), and of appliance/* only the
// wiring imports appliance/config, which assembles the subsystems' sections. atomicfile imports nothing of the
// project's and anything may import it; so are the other leaves: clock (real and fake
// time), health (problems as data), conf (config values and problems), metric (Prometheus
// metrics named patchgate_<subsystem>_<name> on a given registry) and agentapi (the
// agent API's wire types, shared by agent and appliance/rollout), defaults (a service's
// missing clock, logger and registry; it uses clock) and goldentest (test output against
// golden files, for any package's tests). Only the wiring,
// appliance, renders through appliance/web: the services expose their status as data.
func allowed(from, to string) bool {
	top := func(p string) string { a, _, _ := strings.Cut(p, "/"); return a }
	within := func(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }
	leaf := func(p string) bool {
		return within(p, "atomicfile") || within(p, "clock") || within(p, "health") || within(p, "conf") ||
			within(p, "agentapi") || within(p, "metric") || within(p, "defaults") ||
			within(p, "goldentest")
	}
	switch {
	case leaf(to): // crash-safe writes, time, health problems, config values and agent wire types, for every package
		// Leaves import nothing of the project's but their own (conf/conftest: conf) and
		// atomicfile, which imports nothing (agentapi/clienttls keeps its pin with it);
		// defaults fills a service's missing clock with the wall clock.
		return !leaf(from) || within(from, to) || to == "atomicfile" || from == "defaults" && to == "clock"
	case leaf(from):
		return false
	case within(from, "cmd"), within(from, "test"):
		return true
	case within(to, "cmd"), within(to, "test") && !strings.HasPrefix(to, "test/netlab"):
		return false
	case within(from, "appliance"):
		if to == "appliance" || within(to, "appliance/web") {
			return from == "appliance" || within(from, "appliance/web")
		}
		// appliance/config assembles the subsystems' sections; they must not need it
		// (what a section refers to outside itself is handed to its Validate).
		if to == "appliance/config" {
			return from == "appliance"
		}
		// The rollout engine hands the cache nothing but interfaces the wiring fills (the
		// serving gate's done-callback, Prestager), and owns approvals and exceptions: auth
		// only decides who may use their routes, so the two do not import each other.
		if within(from, "appliance/rollout") && (within(to, "cache") || within(to, "appliance/auth")) ||
			within(from, "appliance/auth") && within(to, "appliance/rollout") {
			return false
		}
		// appliance/selfupdate installs appliance versions with the image's A/B updater.
		return within(to, "appliance") || within(to, "cache") || within(to, "tuf") || within(to, "netscan") ||
			within(to, "image/abupdate")
	case within(from, "cache"):
		return within(to, "cache") || within(to, "tuf")
	case within(from, "tuf"), within(from, "netscan"):
		return top(to) == top(from)
	case within(from, "agent"):
		return within(to, "agent") || within(to, "tuf")
	case within(from, "image"):
		return within(to, "image") || within(to, "tuf")
	}
	return false
}

func TestDependencyDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		imports := p.Imports
		// Tests may use other packages' test helpers (tuf/tuftest, test/netlab) and render
		// a package's pages with the real templates (appliance/web).
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if strings.HasSuffix(imp, "tuftest") || strings.Contains(imp, "test/netlab") ||
				strings.HasSuffix(imp, "/appliance/web") && strings.HasPrefix(from, "appliance/") {
				continue
			}
			imports = append(imports, imp)
		}
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := strings.TrimPrefix(imp, module+"/")
			if to == from {
				continue
			}
			checked++
			if !allowed(from, to) {
				t.Errorf("%s imports %s, against the dependency direction of DESIGN.md", from, to)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no project imports checked")
	}
}

func TestAllowedRules(t *testing.T) {
	tests := []struct {
		from, to string
		want     bool
	}{
		{"cmd/patchgate", "appliance", true},
		{"appliance", "appliance/store", true},
		{"appliance/resolver", "appliance", false},
		{"appliance/web", "appliance/health", true},
		{"appliance", "appliance/web", true},
		{"appliance/resolver", "appliance/web", false},
		{"appliance/selfupdate", "appliance/web", false},
		{"appliance/web", "appliance/logring", true},
		{"appliance/rollout", "cache", false},
		{"appliance/rollout", "appliance/auth", false},
		{"appliance/auth", "appliance/rollout", false},
		{"appliance", "appliance/rollout", true},
		{"appliance/compliance", "appliance/rollout", true},
		{"cache", "tuf", true},
		{"cache", "appliance/config", false},
		{"tuf", "cache", false},
		{"tuf/tuftest", "tuf", true},
		{"netscan/passive", "netscan", true},
		{"netscan", "tuf", false},
		{"agent", "tuf", true},
		{"agentapi/clienttls", "atomicfile", true},
		{"agentapi/clienttls", "clock", false},
		{"agent", "appliance/config", false},
		{"appliance", "appliance/config", true},
		{"appliance/config", "appliance/resolver", true},
		{"appliance/resolver", "appliance/config", false},
		{"appliance/gateway", "appliance/segment", true},
		{"cache", "appliance/segment", false},
		{"tuf", "conf", true},
		{"appliance/inventory", "cmd/patchgate", false},
		{"agent", "agentapi", true},
		{"appliance/rollout", "agentapi", true},
		{"cache", "agentapi", true},
		{"agentapi", "agent", false},
		{"agentapi", "appliance/rollout", false},
		{"agentapi", "clock", false},
		{"agent", "appliance/rollout", false},
		{"appliance/rollout", "agent", false},
		{"cache", "clock", true},
		{"tuf", "health", true},
		{"clock", "health", false},
		{"conf/conftest", "conf", true},
		{"conf/conftest", "clock", false},
		{"defaults", "clock", true},
		{"defaults", "metric", false},
		{"appliance/backup", "defaults", true},
		{"image/firstboot", "goldentest", true},
		{"goldentest", "clock", false},
	}
	for _, tt := range tests {
		if got := allowed(tt.from, tt.to); got != tt.want {
			t.Errorf("allowed(%q, %q) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
