package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/conf"
)

// rolloutClient talks to the admin API of a running appliance.
type rolloutClient struct {
	op            string // the command, for errors ("rollout" when empty)
	server, token string
	http          *http.Client
	asJSON        bool
	out           io.Writer
}

func newRolloutCmd() *cobra.Command {
	c := &rolloutClient{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Manage releases, rollouts, rings and windows through the appliance's admin API",
		Long: `rollout drives the admin JSON API of a running appliance. It authenticates with an API
token (patchgate login stores one; or make one on the account page or POST /api/v1/tokens;
its role decides what it may do: requester, approver, deployer...) given by --token or
$PATCHGATE_TOKEN. The server is --server, $PATCHGATE_SERVER or the admin listener of
--config. The admin listener serves HTTPS with a self-signed certificate: pin it with
--fingerprint (the SHA-256 the appliance logs at start; login stores it) or trust it with
--cacert.

A rollout's life:
  patchgate rollout release create --name "openssl 3.0.14" --repo vendor --target pkgs/openssl.deb --severity high
  patchgate rollout create --release 1 --risk "..." --test-evidence "..." --rollback-plan "..."
  patchgate rollout submit 1          (the requester)
  patchgate rollout approve 1         (someone else)
  patchgate rollout schedule 1        (a deployer)
  patchgate rollout show 1`,
	}
	c.adminAPI(cmd, "print the API's JSON instead of tables")

	cmd.AddCommand(
		c.getCmd("rings", "List the rings", "/api/v1/rings", nil),
		c.getCmd("windows", "List the maintenance windows", "/api/v1/windows", nil),
		c.getCmd("openings", "Show each ring's window: open now, or when it opens", "/api/v1/windows/openings", nil),
		c.getCmd("releases", "List the releases", "/api/v1/releases", nil),
		c.getCmd("overdue", "Devices past their deadline, by severity", "/api/v1/overdue", nil),
		c.getCmd("agents", "List the enrolled agents", "/api/v1/agents", nil),
		c.listCmd(), c.showCmd(), c.deploymentsCmd(),
		c.windowCmd(), c.releaseCmd(), c.kevCmd(), c.createCmd(), c.tokenCmd(),
	)
	for _, a := range []struct{ name, short, field string }{
		{"submit", "Ask for approval (you become the requester, who cannot approve)", ""},
		{"approve", "Approve (never your own request; an emergency needs two approvers)", "remark"},
		{"reject", "Send back to draft with a remark", "remark"},
		{"schedule", "Set an approved rollout to start (now, or --start)", "start"},
		{"pause", "Stop handing the release out", "reason"},
		{"resume", "Continue a paused rollout", "remark"},
		{"halt", "Stop a rollout for good (open deployments are cancelled)", "reason"},
		{"cancel", "Withdraw a rollout that has not started", "reason"},
		{"advance", "Force the current stage to end and the next ring to start (recorded)", "reason"},
	} {
		cmd.AddCommand(c.actionCmd(a.name, a.short, a.field))
	}
	return cmd
}

// adminAPI makes cmd reach the admin API through c: it adds the admin target's flags
// (--server, --token, --fingerprint, --cacert, --config) and --json (jsonUsage) to
// every subcommand, and resolves them into c before any of them runs.
func (c *rolloutClient) adminAPI(cmd *cobra.Command, jsonUsage string) {
	var target adminTarget
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		c.out = cmd.OutOrStdout()
		hc, err := target.resolve(cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", c.prefix(), err)
		}
		c.http, c.server, c.token = hc, target.server, target.token
		return nil
	}
	pf := cmd.PersistentFlags()
	target.addFlags(pf)
	pf.BoolVar(&c.asJSON, "json", false, jsonUsage)
}

// adminHTTPClient trusts the admin certificate by fingerprint or CA file, else the
// system's roots.
func adminHTTPClient(fingerprint, cacert string) (*http.Client, error) {
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case fingerprint != "":
		want, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(fingerprint, ":", "")))
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("--fingerprint: want the certificate's SHA-256 in hex, got %q", fingerprint)
		}
		tcfg.InsecureSkipVerify = true // replaced by the pin below
		tcfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 {
				if sum := sha256.Sum256(raw[0]); bytes.Equal(sum[:], want) {
					return nil
				}
			}
			return errors.New("the admin certificate does not match --fingerprint")
		}
	case cacert != "":
		pool, err := conf.CertPool(cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		tcfg.RootCAs = pool
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg, Proxy: http.ProxyFromEnvironment}}, nil
}

// call sends a request to the admin API and returns the body of a 2xx answer, or the
// API's error message.
func (c *rolloutClient) call(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			r = bytes.NewReader(raw)
		} else {
			j, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			r = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(c.server, "/")+path, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.prefix(), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", c.prefix(), method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", c.prefix(), method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized || (resp.StatusCode == http.StatusForbidden && c.token == "") {
			msg += " (run patchgate login, or give an API token with --token or $PATCHGATE_TOKEN)"
		}
		return nil, fmt.Errorf("%s: %s %s: %d %s: %s", c.prefix(), method, path, resp.StatusCode, http.StatusText(resp.StatusCode), msg)
	}
	return raw, nil
}

func (c *rolloutClient) prefix() string { return cmp.Or(c.op, "rollout") }

// callPrint calls the API and prints its answer (see print).
func (c *rolloutClient) callPrint(cmd *cobra.Command, method, path string, body any, table func(io.Writer, []byte) error) error {
	raw, err := c.call(cmd, method, path, body)
	if err != nil {
		return err
	}
	return c.print(raw, table)
}

// callJSON is call, decoding the answer into out (when not nil).
func (c *rolloutClient) callJSON(cmd *cobra.Command, method, path string, body, out any) error {
	raw, err := c.call(cmd, method, path, body)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: %s %s: answer: %w", c.prefix(), method, path, err)
	}
	return nil
}

// print shows raw JSON indented, or through table when given and --json is not set.
func (c *rolloutClient) print(raw []byte, table func(io.Writer, []byte) error) error {
	if table != nil && !c.asJSON {
		tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		if err := table(tw, raw); err != nil {
			return err
		}
		return tw.Flush()
	}
	var buf bytes.Buffer
	if len(raw) == 0 {
		return nil
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = c.out.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(c.out)
	return err
}

// callDecode calls the API like call and decodes the answer into v for the caller to
// show, or, with --json, prints the answer as it is and says so (printed).
func (c *rolloutClient) callDecode(cmd *cobra.Command, method, path string, body, v any) (printed bool, err error) {
	raw, err := c.call(cmd, method, path, body)
	if err != nil {
		return false, err
	}
	if c.asJSON {
		return true, c.print(raw, nil)
	}
	return false, json.Unmarshal(raw, v)
}

func (c *rolloutClient) getCmd(use, short, path string, table func(io.Writer, []byte) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		return c.callPrint(cmd, "GET", path, nil, table)
	}}
}

func rolloutTable(w io.Writer, raw []byte) error {
	var rs []rollout.Rollout
	if err := json.Unmarshal(raw, &rs); err != nil {
		return err
	}
	fmt.Fprintln(w, "ID\tNAME\tRELEASE\tSEVERITY\tSTATE\tSTAGE\tAPPROVALS\tREASON")
	for _, r := range rs {
		rel, sev := "", ""
		if r.Release != nil {
			rel, sev = r.Release.Name, string(r.Release.Severity)
			if r.Release.KnownExploited {
				sev += " (KEV)"
			}
		}
		stage := "-"
		if (r.State == rollout.Running || r.State == rollout.Paused) && r.Current < len(r.Stages) {
			stage = fmt.Sprintf("%d/%d %s", r.Current+1, len(r.Stages), r.Stages[r.Current].Ring)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.Name, rel, sev, r.State, stage, len(r.Approvals), r.ApprovalsNeeded, r.Reason)
	}
	return nil
}

func (c *rolloutClient) listCmd() *cobra.Command {
	var states []string
	cmd := &cobra.Command{Use: "list [--state S]...", Short: "List rollouts", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		q := url.Values{"state": states}
		return c.callPrint(cmd, "GET", "/api/v1/rollouts?"+q.Encode(), nil, rolloutTable)
	}}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only rollouts in these states")
	return cmd
}

func (c *rolloutClient) showCmd() *cobra.Command {
	return &cobra.Command{Use: "show ID", Short: "Show a rollout with its stages, approvals and history", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		var r rollout.Rollout
		if printed, err := c.callDecode(cmd, "GET", "/api/v1/rollouts/"+id, nil, &r); printed || err != nil {
			return err
		}
		evs, err := c.call(cmd, "GET", "/api/v1/rollouts/"+id+"/events", nil)
		if err != nil {
			return err
		}
		var events []rollout.Event
		if err := json.Unmarshal(evs, &events); err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		fmt.Fprintf(w, "Rollout %d: %s\t%s\n", r.ID, r.Name, r.State)
		if r.Reason != "" {
			fmt.Fprintf(w, "Reason:\t%s\n", r.Reason)
		}
		if r.Release != nil {
			fmt.Fprintf(w, "Release:\t%d %s (%s, %s/%s)\n", r.Release.ID, r.Release.Name, r.Release.Severity, r.Release.Repo, strings.Join(r.Release.Targets, ", "))
		}
		fmt.Fprintf(w, "Requested by:\t%s\temergency: %t\n", r.RequestedBy, r.Emergency)
		for _, a := range r.Approvals {
			fmt.Fprintf(w, "Approved by:\t%s\t%s\t%s\n", a.By, a.At.UTC().Format(time.RFC3339), a.Remark)
		}
		fmt.Fprintln(w, "\nSTAGE\tRING\tSUCCESS\tERRORS\tSOAK\tMAX\tSTARTED\tDONE")
		for i, s := range r.Stages {
			mark := " "
			if i == r.Current && (r.State == rollout.Running || r.State == rollout.Paused) {
				mark = "*"
			}
			fmt.Fprintf(w, "%s%d\t%s\t%g%%\t%g%% of %d\t%s\t%d\t%s\t%s\n", mark, i+1, s.Ring, s.SuccessPercent, s.ErrorPercent, s.MinResults, s.Soak,
				s.MaxConcurrent, when(s.StartedAt), when(s.DoneAt))
		}
		fmt.Fprintln(w, "\nTIME\tACTOR\tACTION\tDETAILS")
		for i := len(events) - 1; i >= 0; i-- {
			ev := events[i]
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339), ev.Actor, ev.Action, details(ev.Details))
		}
		return w.Flush()
	}}
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func details(d map[string]string) string {
	var parts []string
	for _, k := range []string{"from", "to", "reason", "remark", "ring", "stage", "count", "rings"} {
		if v := d[k]; v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func parseID(s string) (string, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return "", fmt.Errorf("rollout: %q is not an id", s)
	}
	return strconv.FormatInt(n, 10), nil
}

func (c *rolloutClient) deploymentsCmd() *cobra.Command {
	var rid, asset, ring string
	var states []string
	cmd := &cobra.Command{Use: "deployments", Short: "List deployments (device x release)", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		q := url.Values{"state": states}
		for k, v := range map[string]string{"rollout": rid, "asset": asset, "ring": ring} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return c.callPrint(cmd, "GET", "/api/v1/deployments?"+q.Encode(), nil, func(w io.Writer, raw []byte) error {
			var ds []rollout.Deployment
			if err := json.Unmarshal(raw, &ds); err != nil {
				return err
			}
			fmt.Fprintln(w, "ID\tROLLOUT\tDEVICE\tRING\tSTATE\tSINCE\tATTEMPT\tDEADLINE\tDETAIL")
			for _, d := range ds {
				name := d.AssetName
				if name == "" {
					name = d.AssetID
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", d.ID, d.RolloutID, name, d.Ring, d.State, when(d.StateAt),
					d.Attempt, d.MaxAttempts, when(d.Deadline), d.Detail)
			}
			return nil
		})
	}}
	f := cmd.Flags()
	f.StringVar(&rid, "rollout", "", "only this rollout's")
	f.StringVar(&asset, "asset", "", "only this device's")
	f.StringVar(&ring, "ring", "", "only this ring's")
	f.StringSliceVar(&states, "state", nil, "only in these states")
	return cmd
}

func (c *rolloutClient) actionCmd(action, short, field string) *cobra.Command {
	var text, start string
	use := action + " ID"
	if field != "" && field != "start" {
		use += " [--" + field + " TEXT]"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		body := map[string]any{}
		switch field {
		case "remark":
			body["remark"] = text
		case "reason":
			body["reason"] = text
		case "start":
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return fmt.Errorf("rollout: --start: want a time like 2026-03-09T22:00:00-05:00, got %q", start)
				}
				body["start"] = t
			}
		}
		var r rollout.Rollout
		if printed, err := c.callDecode(cmd, "POST", "/api/v1/rollouts/"+id+"/"+action, body, &r); printed || err != nil {
			return err
		}
		fmt.Fprintf(c.out, "rollout %d: %s", r.ID, r.State)
		if r.State == rollout.PendingApproval {
			fmt.Fprintf(c.out, " (%d of %d approvals)", len(r.Approvals), r.ApprovalsNeeded)
		}
		if r.State == rollout.Scheduled {
			fmt.Fprintf(c.out, " to start %s", when(r.StartAt))
		}
		fmt.Fprintln(c.out)
		return nil
	}}
	switch field {
	case "remark", "reason":
		cmd.Flags().StringVar(&text, field, "", "the "+field+" recorded with the action")
	case "start":
		cmd.Flags().StringVar(&start, "start", "", "when to start (RFC 3339; default now)")
	}
	return cmd
}

func (c *rolloutClient) windowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "window", Short: "Add or delete maintenance windows"}
	var w rollout.Window
	var dur time.Duration
	add := &cobra.Command{Use: "add --name N --cron EXPR --duration D --zone Z [--ring R] [--segment S]", Short: "Add a maintenance window",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			w.Duration = rollout.Duration(dur)
			return c.callPrint(cmd, "POST", "/api/v1/windows", w, nil)
		}}
	f := add.Flags()
	f.StringVar(&w.Name, "name", "", "a name for people")
	f.StringVar(&w.Cron, "cron", "", `when it opens: "minute hour day month weekday", e.g. "0 22 * * 1-5"`)
	f.DurationVar(&dur, "duration", 0, "how long it stays open, e.g. 6h")
	f.StringVar(&w.Zone, "zone", "", "IANA time zone, e.g. America/New_York")
	f.StringVar(&w.From, "from", "", "first day (YYYY-MM-DD), optional")
	f.StringVar(&w.Until, "until", "", "last day (YYYY-MM-DD), optional")
	f.StringVar(&w.Ring, "ring", "", "only for this ring")
	f.StringVar(&w.Segment, "segment", "", "only for this segment")
	del := &cobra.Command{Use: "delete ID", Short: "Delete a maintenance window", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		_, err = c.call(cmd, "DELETE", "/api/v1/windows/"+id, nil)
		return err
	}}
	cmd.AddCommand(add, del)
	return cmd
}

func (c *rolloutClient) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Record releases"}
	var r rollout.Release
	var sev, published string
	create := &cobra.Command{Use: "create --name N --repo R --target PATH... --severity S", Short: "Record a release", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r.Severity = rollout.Severity(sev)
			if published != "" {
				t, err := time.Parse(time.RFC3339, published)
				if err != nil {
					return fmt.Errorf("rollout: --published: want RFC 3339, got %q", published)
				}
				r.Published = t
			}
			return c.callPrint(cmd, "POST", "/api/v1/releases", r, nil)
		}}
	f := create.Flags()
	f.StringVar(&r.Name, "name", "", "a name for people")
	f.StringVar(&r.Version, "version", "", "the version devices report once they have it")
	f.StringVar(&r.Repo, "repo", "", "the upstream repository (tuf.repositories[].name)")
	f.StringSliceVar(&r.Targets, "target", nil, "a target path in the repository (repeat for several)")
	f.StringVar(&sev, "severity", "", "critical, high, medium or low")
	f.StringSliceVar(&r.CVEs, "cve", nil, "a CVE the release fixes (repeat)")
	f.BoolVar(&r.KnownExploited, "known-exploited", false, "a fixed CVE is known to be exploited")
	f.StringVar(&published, "published", "", "when the vendor published it (RFC 3339; default now)")
	f.StringVar(&r.Notes, "notes", "", "notes")
	cmd.AddCommand(create)
	return cmd
}

func (c *rolloutClient) kevCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "kev", Short: "CISA Known Exploited Vulnerabilities"}
	cmd.AddCommand(&cobra.Command{Use: "import FILE", Short: "Mark releases that fix a KEV-listed CVE as known-exploited (with its due date)",
		Long: `import reads CISA's known_exploited_vulnerabilities.json (downloaded where there is internet
and copied here) and sends it to the appliance, which marks every release fixing a listed CVE.`,
		Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("rollout: kev import: %w", err)
			}
			return c.callPrint(cmd, "POST", "/api/v1/releases/kev", b, nil)
		}})
	return cmd
}

func (c *rolloutClient) createCmd() *cobra.Command {
	var spec rollout.RolloutSpec
	var rings []string
	cmd := &cobra.Command{Use: "create --release ID [--ring R]... --risk T --test-evidence T --rollback-plan T", Short: "Create a draft rollout",
		Long: `create makes a draft rollout of a release. Without --ring it has one stage per ring in ring
order (95% success, pause at 20% failures once 3 results are in, soak 24h; the last ring
does not soak); with --ring, those rings in the order given, with the same thresholds. For
other thresholds use the API (POST /api/v1/rollouts with "stages").`,
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			for i, r := range rings {
				st := rollout.DefaultStage(r)
				if i == len(rings)-1 {
					st.Soak = 0
				}
				spec.Stages = append(spec.Stages, st)
			}
			var r rollout.Rollout
			if printed, err := c.callDecode(cmd, "POST", "/api/v1/rollouts", spec, &r); printed || err != nil {
				return err
			}
			fmt.Fprintf(c.out, "rollout %d: %s (%d stages); submit it with: patchgate rollout submit %d\n", r.ID, r.State, len(r.Stages), r.ID)
			return nil
		}}
	f := cmd.Flags()
	f.Int64Var(&spec.ReleaseID, "release", 0, "the release to roll out")
	f.StringVar(&spec.Name, "name", "", "a name (default the release's)")
	f.BoolVar(&spec.Emergency, "emergency", false, "skip maintenance windows once two approvers agree (known-exploited or critical releases)")
	f.StringSliceVar(&rings, "ring", nil, "a ring stage, in order (repeat)")
	f.StringVar(&spec.Risk, "risk", "", "the change request's risk assessment")
	f.StringVar(&spec.TestEvidence, "test-evidence", "", "what was tested, where, with what result")
	f.StringVar(&spec.RollbackPlan, "rollback-plan", "", "how to undo it, and who triggers it")
	return cmd
}

func (c *rolloutClient) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Enrolment tokens for endpoint agents"}
	var name, ring string
	var tags []string
	var ttl time.Duration
	var uses int
	create := &cobra.Command{Use: "create --name N [--ring R] [--tag T]... [--ttl D] [--max-uses N]", Short: "Make an enrolment token (shown once)",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			var t struct {
				Token string                 `json:"token"`
				Info  rollout.EnrolmentToken `json:"info"`
			}
			if printed, err := c.callDecode(cmd, "POST", "/api/v1/enrolment-tokens", map[string]any{"name": name, "ring": ring, "tags": tags,
				"ttl": ttl.String(), "max_uses": uses}, &t); printed || err != nil {
				return err
			}
			fmt.Fprintf(c.out, "%s\n(token %s: %d enrolment(s) until %s; it is not shown again)\n", t.Token, t.Info.ID, t.Info.MaxUses, when(t.Info.ExpiresAt))
			return nil
		}}
	f := create.Flags()
	f.StringVar(&name, "name", "", "what it is for")
	f.StringVar(&ring, "ring", "", "the ring enrolled agents join (default: by selectors)")
	f.StringSliceVar(&tags, "tag", nil, "a tag for enrolled agents (repeat)")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "how long it is valid")
	f.IntVar(&uses, "max-uses", 1, "how many agents may enrol with it")
	cmd.AddCommand(create, c.getCmd("list", "List enrolment tokens (never their secrets)", "/api/v1/enrolment-tokens", nil))
	return cmd
}
