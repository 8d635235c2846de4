package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/test/netlab"
)

// startAppliance runs the dev config on a loopback port with its state in a temp dir and
// returns the admin address and the log.
func startAppliance(t *testing.T) (string, *netlab.Buffer) {
	t.Helper()
	cfg, err := config.Load("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.State.Dir = t.TempDir()
	cfg.Admin.Listen, cfg.Distribution.Listen, cfg.Resolver.Listen = "127.0.0.1:0", "127.0.0.1:0", []string{"127.0.0.1:0"}
	logs := &netlab.Buffer{}
	sys, err := appliance.New(context.Background(), cfg, appliance.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := sys.Start(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return sys.AdminAddr(), logs
}

// enrolledAdmin creates the first admin with the setup token from the log and enrols a
// TOTP second factor for them; it returns the TOTP secret.
func enrolledAdmin(t *testing.T, base string, logs *netlab.Buffer, user, password string) string {
	t.Helper()
	m := regexp.MustCompile(`setup_token=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup token in the log:\n%s", logs.String())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	call := func(path string, body any, want int) map[string]any {
		t.Helper()
		method := "GET"
		var rd io.Reader
		if body != nil {
			method = "POST"
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %v, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	call("/setup", map[string]string{"token": m[1], "user": user, "password": password}, http.StatusCreated)
	call("/login", map[string]string{"user": user, "password": password}, http.StatusOK)
	secret, _ := call("/account/mfa", nil, http.StatusOK)["secret"].(string)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	call("/account/mfa", map[string]string{"code": code}, http.StatusOK)
	call("/logout", map[string]string{}, http.StatusOK)
	return secret
}

// TestLoginStoresATokenTheCLIUses: patchgate login with password and TOTP code stores an
// API token (0600, in the user's config directory) that the rollout commands then use
// without --token, against the server the config file names.
func TestLoginStoresATokenTheCLIUses(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("HOME", home)
	t.Setenv("PATCHGATE_SERVER", "")
	t.Setenv("PATCHGATE_TOKEN", "")
	addr, logs := startAppliance(t)
	server := "http://" + addr
	const password = "correct horse battery staple"
	secret := enrolledAdmin(t, server, logs, "ada", password)

	// The config a site has: its admin listener is the CLI's default server.
	cfgPath := filepath.Join(t.TempDir(), "patchgate.yaml")
	os.WriteFile(cfgPath, []byte("admin:\n  listen: "+addr+"\nauth:\n  tls:\n    mode: \"off\"\n"), 0o600)

	if _, stderr, code := run(t, "rollout", "releases", "--config", cfgPath); code == 0 || !strings.Contains(stderr, "patchgate login") {
		t.Fatalf("rollout before login: exit %d, stderr %q; want refused, pointing at patchgate login", code, stderr)
	}
	if _, stderr, code := runIn(t, "wrong password\n", "login", "--config", cfgPath, "--user", "ada"); code == 0 || !strings.Contains(stderr, "401") {
		t.Fatalf("login with a wrong password: exit %d, stderr %q", code, stderr)
	}
	// The enrolment used this time step; the next one is within the accepted drift.
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	out, stderr, code := runIn(t, password+"\n"+next+"\n", "login", "--config", cfgPath, "--user", "ada")
	if code != 0 || !strings.Contains(out, "logged in to "+server+" as ada (role admin)") {
		t.Fatalf("login: exit %d, out %q, stderr %q", code, out, stderr)
	}
	path := filepath.Join(home, "patchgate", "credentials.json")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file %s: %v, mode %v; want 0600", path, err, st.Mode())
	}
	raw, _ := os.ReadFile(path)
	var creds credentials
	if err := json.Unmarshal(raw, &creds); err != nil || !strings.HasPrefix(creds.Servers[server].Token, "pgt_") {
		t.Fatalf("credentials = %s, %v; want a pgt_ token for %s", raw, err, server)
	}
	if _, stderr, code := run(t, "rollout", "releases", "--config", cfgPath); code != 0 {
		t.Errorf("rollout after login: exit %d, stderr %q", code, stderr)
	}
}

// TestServerOfConfig: the default server is the config's admin listener, reached on
// loopback when it listens on every address, over HTTPS unless TLS is off.
func TestServerOfConfig(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"default", "", "https://127.0.0.1:9080"},
		{"wildcard", "admin:\n  listen: \":9443\"\n", "https://127.0.0.1:9443"},
		{"ipv6 wildcard", "admin:\n  listen: \"[::]:9443\"\n", "https://[::1]:9443"},
		{"plain on loopback", "admin:\n  listen: 127.0.0.1:9081\nauth:\n  tls:\n    mode: \"off\"\n", "http://127.0.0.1:9081"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			got, err := serverOf(path)
			if err != nil || got != tt.want {
				t.Errorf("serverOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
