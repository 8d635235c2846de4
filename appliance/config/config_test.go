package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/goldentest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestBadConfigs loads each testdata/bad/NAME.yaml and compares the messages with
// testdata/bad/NAME.golden.
func TestBadConfigs(t *testing.T) {
	goldentest.Each(t, "testdata/bad/*.yaml", ".golden", *update, func(t *testing.T, f string) []byte {
		cfg, err := Load(f)
		if err == nil {
			t.Fatalf("Load(%s) = %+v, nil; want an error", f, cfg)
		}
		var ce *conf.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Load(%s) error %T %v, want *conf.Error", f, err, err)
		}
		return []byte(err.Error() + "\n")
	})
}

func TestGoodConfig(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Log.Level != "debug" || cfg.State.Dir != "/tmp/patchgate" {
		t.Errorf("decoded log/state = %+v %+v", cfg.Log, cfg.State)
	}
	// A key the file leaves out keeps its default.
	if got, want := cfg.Shutdown.Timeout.D(), Default().Shutdown.Timeout.D(); got != want {
		t.Errorf("shutdown.timeout = %v, want default %v", got, want)
	}
	if got := cfg.Segments[0].Clients[0].String(); got != "10.20.0.0/24" {
		t.Errorf("segments[0].clients[0] = %s", got)
	}
}

func TestShippedConfigsAreValid(t *testing.T) {
	for _, f := range []string{"../../configs/patchgate.yaml", "../../configs/dev.yaml"} {
		if _, err := Load(f); err != nil {
			t.Errorf("Load(%s):\n%v", f, err)
		}
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	cfg, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatalf("Parse(empty) = %v", err)
	}
	if diff := cmp.Diff(Default(), *cfg); diff != "" {
		t.Errorf("empty config differs from Default (-want +got):\n%s", diff)
	}
}

func TestDurationRejectsNumbers(t *testing.T) {
	_, err := Parse("x.yaml", []byte("shutdown:\n  timeout: 10\n"))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:2: shutdown.timeout:") {
		t.Fatalf("Parse(timeout: 10) error = %v, want x.yaml:2: shutdown.timeout: ...", err)
	}
}

// FuzzParse: whatever the bytes, Parse returns a config or an error, never panics, and an
// error names the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/bad/*.yaml", "testdata/good/*.yaml", "../../configs/*.yaml"} {
		files, _ := filepath.Glob(dir)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("segments: [{name: a, clients: [1.2.3.4/40]}]"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("Parse returned nil, nil")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// TestDevConfigStaysOnLoopback guards the network-safety rule: `make run` and every test
// that runs the appliance on configs/dev.yaml must send nothing beyond loopback.
func TestDevConfigStaysOnLoopback(t *testing.T) {
	cfg, err := Load("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loopback := func(key, hostport string) {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Errorf("%s = %q: %v", key, hostport, err)
			return
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			t.Errorf("%s = %q, want a loopback address in the dev config", key, hostport)
		}
	}
	loopback("admin.listen", cfg.Admin.Listen)
	loopback("distribution.listen", cfg.Distribution.Listen)
	for i, l := range cfg.Resolver.Listen {
		loopback(fmt.Sprintf("resolver.listen[%d]", i), l)
	}
	for i, u := range cfg.Resolver.Upstreams {
		loopback(fmt.Sprintf("resolver.upstreams[%d]", i), u.Address)
	}
	for i, r := range cfg.TUF.Repositories {
		for _, raw := range []string{r.MetadataURL, r.TargetsURL} {
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("tuf.repositories[%d]: %v", i, err)
				continue
			}
			port := u.Port()
			if port == "" {
				port = "443"
			}
			loopback(fmt.Sprintf("tuf.repositories[%d]", i), net.JoinHostPort(u.Hostname(), port))
		}
	}
	if cfg.Gateway.Enabled {
		t.Error("gateway.enabled in the dev config: it changes the host's firewall")
	}
	if cfg.Inventory.Scan.Enabled || cfg.Inventory.Passive.Enabled {
		t.Error("discovery enabled in the dev config: it would probe or listen beyond loopback")
	}
}
