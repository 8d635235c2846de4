package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/test/netlab"
	"github.com/patchgate/patchgate/tuf"
)

// vendorReport is one answer of the vendorappliance role to "status".
type vendorReport struct {
	Status   vendorhost.Status `json:"status"`
	Outcomes struct {
		Outcomes []vendorhost.Outcome `json:"outcomes"`
	} `json:"asset_outcomes"`
}

// roleVendorAppliance runs the whole appliance in the lab's appliance namespace: the
// devices' resolver (updates.vendor.example rewritten to the appliance), the vendor
// host listeners on ports 80 and 443, and scans of the segment. It mirrors the
// repository published in repo-dir (tuf.demo). Once the vendor name is mapped it prints
// "ready", then answers commands read from stdin, one a line:
//
//	scan FIRMWARE  a scan, repeated until the asset reads FIRMWARE (40s at most); prints "scanned FIRMWARE-READ"
//	status         one JSON line: vendorReport
//	rollout        a release of vendor/printers/x.bin rolled out to the core ring (submitted,
//	               approved, scheduled); prints "rollout ID"
//	deployments ID one JSON line: the asset's deployments of rollout ID, by the admin API
//
// Args: state-dir repo-dir asset-id.
func roleVendorAppliance(args []string) int {
	sections := fmt.Sprintf(`
resolver:
  listen: ["198.51.100.2:53"]
  upstreams: []
  lists: [{name: cached, names: [updates.vendor.example]}]
  segments: [{segment: devices, rewrite: [cached]}]
vendorhost: {listen: "198.51.100.2:80", https_listen: "198.51.100.2:443"}
tuf: {demo: {enabled: true, name: vendor, dir: %s}}
gateway: {enabled: false}
rollout: {gate: open}
inventory:
  passive: {enabled: false}
  scan: {enabled: true, schedule: "", segments: [devices], timeout: 1s}
`, args[1])
	fail := func(what string, err error) int { fmt.Fprintln(os.Stderr, what+":", err); return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys, stop, err := runLabAppliance(ctx, args[0], "198.51.100.2:8080", sections)
	if err != nil {
		return fail("start", err)
	}
	defer stop()
	token, err := viewerToken(ctx, sys)
	if err != nil {
		return fail("token", err)
	}
	var rep vendorReport
	status := func() error {
		if err := apiGet(ctx, sys, token, "/api/v1/vendorhost", &rep.Status); err != nil {
			return err
		}
		return apiGet(ctx, sys, token, "/api/v1/assets/"+args[2]+"/vendor-outcomes", &rep.Outcomes)
	}
	for !slices.Contains(rep.Status.Hosts, "updates.vendor.example") { // the mirror verified the signed vendor_urls
		if err := apiGet(ctx, sys, token, "/api/v1/vendorhost", &rep.Status); err != nil || ctx.Err() != nil {
			return fail("vendor hosts", fmt.Errorf("%v %v", err, ctx.Err()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("ready")
	d, inv := sys.Discovery(), sys.Inventory()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "scan":
			var a inventory.Asset
			for deadline := time.Now().Add(40 * time.Second); a.Firmware != arg && time.Now().Before(deadline); {
				start := time.Now()
				if err := d.ScanNow(); err != nil {
					return fail("scan", err)
				}
				for st := d.Status(); st.Running || st.LastEnd.Before(start); st = d.Status() {
					time.Sleep(50 * time.Millisecond)
				}
				a, _ = inv.Get(ctx, args[2])
			}
			fmt.Println("scanned", a.Firmware)
		case "rollout":
			id, err := labRollout(ctx, sys.Rollout())
			if err != nil {
				return fail("rollout", err)
			}
			fmt.Println("rollout", id)
		case "deployments":
			var ds []rollout.Deployment
			if err := apiGet(ctx, sys, token, "/api/v1/deployments?rollout="+arg+"&asset="+url.QueryEscape(args[2]), &ds); err != nil {
				return fail("deployments", err)
			}
			json.NewEncoder(os.Stdout).Encode(ds)
		case "status":
			if err := status(); err != nil {
				return fail("status", err)
			}
			json.NewEncoder(os.Stdout).Encode(rep)
		}
	}
	return 0
}

// labRollout creates a release of vendor/printers/x.bin and a rollout of it to the core
// ring (where the printer is, by rollout.default_ring), submitted, approved and
// scheduled, so the printer has a deployment for the read-back to decide.
func labRollout(ctx context.Context, e *rollout.Engine) (int64, error) {
	rel, err := e.CreateRelease(ctx, "rita", rollout.Release{Name: "zt410 fw", Repo: "vendor", Targets: []string{"printers/x.bin"}, Severity: rollout.High})
	if err != nil {
		return 0, err
	}
	r, err := e.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel.ID, Risk: "low", TestEvidence: "lab", RollbackPlan: "reflash",
		Stages: []rollout.Stage{{Ring: "core", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1}}})
	if err != nil {
		return 0, err
	}
	if _, err := e.Submit(ctx, r.ID, "rita"); err != nil {
		return 0, err
	}
	if _, err := e.Approve(ctx, r.ID, "anna", "lab"); err != nil {
		return 0, err
	}
	if _, err := e.Schedule(ctx, r.ID, "dora", time.Time{}); err != nil {
		return 0, err
	}
	return r.ID, e.Tick(ctx)
}

// vendorAppliance talks to a running vendorappliance role.
type vendorAppliance struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Scanner
}

func (v *vendorAppliance) ask(cmd string) string {
	v.t.Helper()
	fmt.Fprintln(v.in, cmd)
	if !v.out.Scan() {
		v.t.Fatalf("appliance: no answer to %q: %v", cmd, v.out.Err())
	}
	return v.out.Text()
}

func (v *vendorAppliance) status() vendorReport {
	v.t.Helper()
	var rep vendorReport
	if line := v.ask("status"); json.Unmarshal([]byte(line), &rep) != nil {
		v.t.Fatalf("appliance status: %q", line)
	}
	return rep
}

// TestVendorHostLab is issue 16's last mile with real programs: a "printer" namespace
// whose resolver is the appliance (resolver rewrite on) fetches its firmware with curl
// from http://updates.vendor.example/firmware/x.bin and gets the verified bytes; a path
// no target vouches for gets 404 and is recorded for that device; over HTTPS with the
// site CA the same bytes come, and a name that is not mapped gets no certificate. Then
// the printer "installs" it (snmpd reports the new version) and the next scan reads
// the outcome back: installed, and the rollout's deployment for the printer succeeded
// (admin API). A target whose file changed upstream after signing serves the printer
// no byte of it, only an error status.
func TestVendorHostLab(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped under -short")
	}
	netlab.Require(t, "snmpd", "curl", "ss")
	dir := t.TempDir()
	lab := netlab.New(t, labNet)
	app := lab.AddHost("appliance", netlab.HostConfig{Addr: netip.MustParseAddr("198.51.100.2"), MAC: "52:54:00:00:00:02"})
	printer := lab.AddHost("printer", netlab.HostConfig{Addr: netip.MustParseAddr("198.51.100.10"), MAC: "00:07:4d:10:20:30"})
	// `ip netns exec` puts /etc/netns/NS/resolv.conf in the printer's /etc/resolv.conf.
	nsEtc := filepath.Join("/etc/netns", printer.NS)
	t.Cleanup(func() { os.RemoveAll(nsEtc) })
	writeFile(t, filepath.Join(nsEtc, "resolv.conf"), "nameserver "+app.Addr.String()+"\noptions timeout:2 attempts:2\n")

	// The vendor's firmware, signed into a TUF repository with the URL the printer
	// fetches it from and its version.
	const firmware, oldVersion, newVersion = "ZT410 firmware V75.20.02Z (lab image)\n", "V75.20.01Z", "V75.20.02Z"
	repo := filepath.Join(dir, "repo")
	ctx := context.Background()
	p, err := tuf.InitRepository(ctx, repo, tuf.InitOptions{TimestampExpires: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "x.bin"), firmware)
	if _, err := p.Add(ctx, filepath.Join(dir, "x.bin"), "printers/x.bin",
		[]byte(`{"version":"`+newVersion+`","vendor_urls":["http://updates.vendor.example/firmware/x.bin"]}`)); err != nil {
		t.Fatal(err)
	}
	// Other bytes than x.bin's: the cache keeps files by digest, and would have them.
	const other = "ZT410 firmware V75.20.03Z (lab image, not fetched yet)\n"
	writeFile(t, filepath.Join(dir, "t.bin"), other)
	if _, err := p.Add(ctx, filepath.Join(dir, "t.bin"), "printers/t.bin",
		[]byte(`{"version":"`+newVersion+`","vendor_urls":["http://updates.vendor.example/firmware/t.bin"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// Upstream tampering after signing: every stored copy of t.bin gets other bytes.
	tampered := 0
	filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, "t.bin") && strings.Contains(path, "printers") {
			writeFile(t, path, strings.Replace(other, "V75", "X75", 1))
			tampered++
		}
		return nil
	})
	if tampered == 0 {
		t.Fatal("no stored copy of printers/t.bin to tamper with")
	}

	startSNMP := func(version string) *exec.Cmd {
		conf := filepath.Join(dir, "snmpd-"+version+".conf")
		writeFile(t, conf, "agentaddress udp:"+printer.Addr.String()+":161\nrocommunity public default\n"+
			"sysDescr ZTC ZT410-300dpi ZPL "+version+"\nsysObjectID .1.3.6.1.4.1.10642.1.1\nsysName zt410-lab\n")
		cmd := printer.Command(ctx, "snmpd", "-f", "-Lo", "-C", "-I", "-smux", "-c", conf, "-p", filepath.Join(dir, "snmpd.pid"))
		cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir)
		printer.StartCmd(t, cmd)
		waitFor(t, printer, "ss -H -lun 'sport = :161'")
		return cmd
	}
	snmpd := startSNMP(oldVersion)

	asset := "mac:" + printer.MAC
	cmd := app.RoleCommand(ctx, "vendorappliance", filepath.Join(dir, "state"), repo, asset)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr netlab.Buffer
	cmd.Stderr = &stderr
	app.StartCmd(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("appliance stderr:\n%s", stderr.String())
		}
	})
	va := &vendorAppliance{t: t, in: stdin, out: bufio.NewScanner(stdout)}
	va.out.Buffer(nil, 1<<20)
	if !va.out.Scan() || va.out.Text() != "ready" {
		t.Fatalf("appliance did not start: %q %v\n%s", va.out.Text(), va.out.Err(), stderr.String())
	}
	if got := va.ask("scan " + oldVersion); got != "scanned "+oldVersion {
		t.Fatalf("first scan: %q, want the printer at %s", got, oldVersion)
	}

	curl := func(args ...string) (string, error) {
		c := printer.Command(ctx, "curl", append([]string{"-sS", "--max-time", "20"}, args...)...)
		var errb bytes.Buffer
		c.Stderr = &errb
		out, err := c.Output()
		if err != nil {
			return string(out), fmt.Errorf("%v: %s", err, errb.String())
		}
		return string(out), nil
	}
	caPath := filepath.Join(dir, "state", "vendorhost", "ca.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string // "" with ok false: curl must fail
		ok   bool
	}{
		{"http firmware", []string{"-f", "http://updates.vendor.example/firmware/x.bin"}, firmware, true},
		{"http path no target vouches for", []string{"-o", "/dev/null", "-w", "%{http_code}", "http://updates.vendor.example/firmware/y.bin"}, "404", true},
		{"https firmware with the site CA", []string{"-f", "--cacert", caPath, "https://updates.vendor.example/firmware/x.bin"}, firmware, true},
		{"https unmapped name gets no certificate", []string{"--cacert", caPath, "--resolve", "www.example.com:443:" + app.Addr.String(), "https://www.example.com/firmware/x.bin"}, "", false},
		{"https without the site CA", []string{"https://updates.vendor.example/firmware/x.bin"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := curl(tc.args...)
			if tc.ok && (err != nil || out != tc.want) {
				t.Fatalf("curl %v = %q, %v; want %q", tc.args, out, err, tc.want)
			}
			if !tc.ok && (err == nil || out != "") {
				t.Fatalf("curl %v = %q, %v; want a failed handshake", tc.args, out, err)
			}
			t.Logf("curl: %v", err)
		})
	}

	// Tampered upstream: an error status (502, the cache's reason), and not one byte of the file.
	tamperedOut := filepath.Join(dir, "tampered.out")
	code, err := curl("-o", tamperedOut, "-w", "%{http_code}", "http://updates.vendor.example/firmware/t.bin")
	if b, _ := os.ReadFile(tamperedOut); err != nil || len(code) != 3 || code[0] != '4' && code[0] != '5' || strings.Contains(string(b), "ZT410") {
		t.Fatalf("tampered target: status %q (%v), body %q (tampered %d files); want an error status and no byte of the file", code, err, b, tampered)
	}

	rolloutID, ok := strings.CutPrefix(va.ask("rollout"), "rollout ")
	if !ok {
		t.Fatalf("rollout: %q", rolloutID)
	}
	rep := va.status()
	if i := slices.IndexFunc(rep.Status.Asked, func(a vendorhost.Asked) bool {
		return a.Device.Addr == printer.Addr && a.Host == "updates.vendor.example" && a.Path == "/firmware/y.bin"
	}); i < 0 || rep.Status.Asked[i].Device.Segment != "devices" || rep.Status.Asked[i].Device.Asset == "" {
		t.Fatalf("asked record %+v: want the printer's /firmware/y.bin (segment devices, its asset)", rep.Status.Asked)
	}
	if got := rep.Outcomes.Outcomes; len(got) != 1 || got[0].State != vendorhost.OutcomeNotYet || got[0].Version != newVersion || got[0].Target != "printers/x.bin" {
		t.Fatalf("outcome after the fetch: %+v, want not_yet for printers/x.bin %s", got, newVersion)
	}

	// The printer installs the firmware and reports its new version; the next scan reads it.
	netlab.Stop(snmpd)
	startSNMP(newVersion)
	if got := va.ask("scan " + newVersion); got != "scanned "+newVersion {
		t.Fatalf("scan after the update: %q", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rep = va.status()
		if got := rep.Outcomes.Outcomes; len(got) == 1 && got[0].State == vendorhost.OutcomeInstalled && got[0].Seen == newVersion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcome after the scan: %+v, want installed, seen %s", rep.Outcomes.Outcomes, newVersion)
		}
	}
	var ds []rollout.Deployment
	if line := va.ask("deployments " + rolloutID); json.Unmarshal([]byte(line), &ds) != nil || len(ds) != 1 ||
		ds[0].State != rollout.DepSucceeded || !strings.Contains(ds[0].Detail, newVersion) {
		t.Fatalf("deployments of rollout %s for the printer: %s; want one succeeded, read back %s", rolloutID, line, newVersion)
	}
	stdin.Close()
}
