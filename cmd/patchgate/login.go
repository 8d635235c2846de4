package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/atomicfile"
)

const defaultConfigPath = "/etc/patchgate/patchgate.yaml"

// defaultConfig is the --config every command takes when none is given:
// $PATCHGATE_CONFIG, else defaultConfigPath. `export PATCHGATE_CONFIG=configs/dev.yaml`
// points the CLI at the appliance `make run` starts.
func defaultConfig() string {
	if p := os.Getenv("PATCHGATE_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath
}

// adminTarget is how a CLI command reaches the admin API: the server, the certificate
// to trust and the API token. Each comes from its flag, else the environment, else (the
// server) admin.listen of the config file, else (token and pin) what `patchgate login`
// stored for that server.
type adminTarget struct {
	server, token, fingerprint, cacert, config string
}

func (t *adminTarget) addFlags(pf *pflag.FlagSet) {
	pf.StringVar(&t.server, "server", "", "admin listener URL ($PATCHGATE_SERVER; default: admin.listen of --config)")
	pf.StringVar(&t.token, "token", "", "API token ($PATCHGATE_TOKEN; default: the one `patchgate login` stored for the server)")
	pf.StringVar(&t.fingerprint, "fingerprint", "", "SHA-256 of the admin certificate to accept (hex, colons allowed)")
	pf.StringVar(&t.cacert, "cacert", "", "PEM file of the CA (or self-signed certificate) to trust")
	pf.StringVar(&t.config, "config", defaultConfig(), "config file whose admin listener is the default server ($PATCHGATE_CONFIG)")
}

// resolve fills in the server, token and pin and returns the HTTP client. A config
// file that cannot be read is an error only when --config was given.
func (t *adminTarget) resolve(cmd *cobra.Command) (*http.Client, error) {
	t.server = strings.TrimSuffix(cmp.Or(t.server, os.Getenv("PATCHGATE_SERVER")), "/")
	if t.server == "" {
		s, err := serverOf(t.config)
		if err != nil && cmd.Flags().Changed("config") {
			return nil, err
		}
		t.server = cmp.Or(s, "https://127.0.0.1:9080")
	}
	creds, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	stored := creds.Servers[t.server]
	t.token = cmp.Or(t.token, os.Getenv("PATCHGATE_TOKEN"), stored.Token)
	if t.cacert == "" {
		t.fingerprint = cmp.Or(t.fingerprint, stored.Fingerprint)
	}
	return adminHTTPClient(t.fingerprint, t.cacert)
}

// serverOf is the URL of the admin listener the config at path sets up: https unless
// auth.tls.mode is off, a wildcard address reached on loopback.
func serverOf(path string) (string, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	host, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil {
		return "", fmt.Errorf("config %s: admin.listen: %w", path, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "https"
	if cfg.Auth.TLS.Mode == "off" {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// credentials are the API tokens `patchgate login` stored, by server URL, in
// credentialsPath (0600).
type credentials struct {
	Servers map[string]storedToken `json:"servers"`
}

type storedToken struct {
	User        string    `json:"user"`
	Role        string    `json:"role"`
	Token       string    `json:"token"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// credentialsPath is patchgate/credentials.json in the user's config directory
// ($XDG_CONFIG_HOME or ~/.config on Linux).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	return filepath.Join(dir, "patchgate", "credentials.json"), nil
}

func loadCredentials() (credentials, error) {
	c := credentials{Servers: map[string]storedToken{}}
	path, err := credentialsPath()
	if err != nil {
		return c, nil // no home: nothing stored
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("credentials: %s: %w (delete it and log in again)", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]storedToken{}
	}
	return c, nil
}

func (c credentials) save() (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, append(raw, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	return path, nil
}

func newLoginCmd() *cobra.Command {
	var t adminTarget
	var user, role string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to the admin API and store an API token for the other commands",
		Long: `login asks for your password and, when you have a second factor, a TOTP code (or a
recovery code), then makes an API token for one of your roles (--role; default: your
last role) and stores it, 0600, in patchgate/credentials.json under your config directory.
Commands that talk to the same server use it without --token. The server is --server,
else $PATCHGATE_SERVER, else the admin listener of --config (/etc/patchgate/patchgate.yaml).
Input comes from the terminal, or one line each from standard input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hc, err := t.resolve(cmd)
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			hc.Jar, _ = cookiejar.New(nil)
			c := &rolloutClient{op: "login", server: t.server, http: hc}
			in := bufio.NewReader(cmd.InOrStdin())
			if user == "" {
				if user, err = prompt(cmd, in, "User: ", false); err != nil {
					return err
				}
			}
			password, err := prompt(cmd, in, "Password: ", true)
			if err != nil {
				return err
			}
			var step struct {
				MFAPending bool `json:"mfa_pending"`
				Enrolling  bool `json:"enrolling"`
			}
			if err := c.callJSON(cmd, "POST", "/login", map[string]string{"user": user, "password": password}, &step); err != nil {
				return err
			}
			defer c.call(cmd, "POST", "/logout", nil) // the token outlives the session
			if step.Enrolling {
				return fmt.Errorf("login: %s has no second factor yet; enrol one in the browser at %s/account/mfa first", user, t.server)
			}
			if step.MFAPending {
				code, err := prompt(cmd, in, "TOTP code (or a recovery code): ", false)
				if err != nil {
					return err
				}
				if err := c.callJSON(cmd, "POST", "/login/mfa", map[string]string{"code": code}, nil); err != nil {
					return err
				}
			}
			var me struct {
				Roles []string `json:"roles"`
			}
			if err := c.callJSON(cmd, "GET", "/api/v1/whoami", nil, &me); err != nil {
				return err
			}
			if role == "" && len(me.Roles) > 0 {
				role = me.Roles[len(me.Roles)-1]
			}
			host, _ := os.Hostname()
			var made struct {
				Token string `json:"token"`
				Info  struct {
					ExpiresAt time.Time `json:"expires_at"`
				} `json:"info"`
			}
			body := map[string]string{"name": "patchgate login on " + cmp.Or(host, "this host"), "role": role}
			if lifetime > 0 {
				body["lifetime"] = lifetime.String()
			}
			if err := c.callJSON(cmd, "POST", "/api/v1/tokens", body, &made); err != nil {
				return err
			}
			creds, err := loadCredentials()
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			creds.Servers[t.server] = storedToken{User: user, Role: role, Token: made.Token, Fingerprint: t.fingerprint, ExpiresAt: made.Info.ExpiresAt}
			path, err := creds.save()
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (role %s); token stored in %s, expires %s\n",
				t.server, user, role, path, made.Info.ExpiresAt.UTC().Format(time.DateOnly))
			return nil
		},
	}
	t.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&user, "user", "", "user name (default: asked)")
	cmd.Flags().StringVar(&role, "role", "", "the role the token acts as (default: your last role)")
	cmd.Flags().DurationVar(&lifetime, "lifetime", 0, "token lifetime (default and maximum: auth.token_lifetime)")
	return cmd
}

// prompt reads one line: from the terminal (without echo when secret), or from
// standard input.
func prompt(cmd *cobra.Command, in *bufio.Reader, what string, secret bool) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), what)
		if secret {
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			return strings.TrimSpace(string(b)), err
		}
	}
	line, err := in.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("login: read %s%w", strings.ToLower(what), err)
	}
	return strings.TrimSpace(line), nil
}
