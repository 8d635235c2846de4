package forward

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/clock/clocktest"
)

// rsyslogd is a real rsyslogd (Debian's rsyslog and rsyslog-gnutls; .ci/run installs
// them) on loopback with an RFC 5425 listener (imtcp over GnuTLS), writing what it
// parsed of each message, one line per message, to out.
type rsyslogd struct {
	t        *testing.T
	bin, dir string
	conf     string
	out      string
	port     int
	cmd      *exec.Cmd
	waitDone chan struct{}
	stderr   bytes.Buffer
}

// outFields is the template of out: the RFC 5424 fields as rsyslog parsed them.
var outFields = []string{"pri", "protocol-version", "timereported", "hostname", "app-name", "procid", "msgid", "structured-data", "msg"}

func newRsyslogd(t *testing.T) *rsyslogd {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			t.Skip("needs rsyslogd (Debian packages rsyslog and rsyslog-gnutls; .ci/run installs them)")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	dir := t.TempDir()
	r := &rsyslogd{t: t, bin: bin, dir: dir, out: filepath.Join(dir, "out.log")}
	writeTestPKI(t, dir)
	return r
}

// writeTestPKI makes a CA and a server certificate for 127.0.0.1 in dir (ca.pem,
// cert.pem, key.pem).
func writeTestPKI(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "patchgate test SIEM CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "siem.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"siem.test"}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, b := range map[string]*pem.Block{"ca.pem": {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: leafDER}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs rsyslogd in the foreground; the first start picks a free port (written
// to a file by imtcp), later ones reuse it, as a server coming back would.
func (r *rsyslogd) start() {
	r.t.Helper()
	portFile := filepath.Join(r.dir, "port")
	os.Remove(portFile)
	port := strconv.Itoa(r.port)
	var tmpl strings.Builder
	for i, f := range outFields {
		if i > 0 {
			tmpl.WriteString("\t")
		}
		if f == "timereported" {
			f += ":::date-rfc3339"
		}
		tmpl.WriteString("%" + f + "%")
	}
	conf := fmt.Sprintf(`global(workDirectory=%[1]q
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[3]q
  defaultNetstreamDriverKeyFile=%[4]q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port=%[5]q listenPortFileName=%[6]q)
template(name="fields" type="string" string=%[7]q)
action(type="omfile" file=%[8]q template="fields")
`, r.dir, filepath.Join(r.dir, "ca.pem"), filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem"),
		port, portFile, tmpl.String()+"\n", r.out)
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.stderr.Reset()
	r.cmd = exec.Command(r.bin, "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = &r.stderr, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start rsyslogd: %v", err)
	}
	r.t.Cleanup(r.stop)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			r.t.Fatalf("rsyslogd ended: %s\n%s", r.cmd.ProcessState, r.stderr.String())
		default:
		}
		n := r.port // imtcp writes the port file only for port 0
		if n == 0 {
			b, _ := os.ReadFile(portFile)
			n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if n > 0 {
			if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n))); err == nil {
				c.Close()
				r.port = n
				r.waitDone = done
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.out)
			r.t.Fatalf("rsyslogd did not listen within 20s (rsyslog-gnutls installed?):\n%s\n%s\nconfig:\n%s", r.stderr.String(), b, conf)
		}
	}
}

// stop ends rsyslogd (SIGTERM, which makes it flush its file) and waits for it.
func (r *rsyslogd) stop() {
	if r.cmd == nil || r.waitDone == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.waitDone:
	case <-time.After(10 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.waitDone
	}
	r.cmd, r.waitDone = nil, nil
}

// lines returns what rsyslogd wrote, one map of outFields per message.
func (r *rsyslogd) lines() []map[string]string {
	b, _ := os.ReadFile(r.out)
	var out []map[string]string
	for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		vals := strings.SplitN(l, "\t", len(outFields))
		m := map[string]string{}
		for i, v := range vals {
			m[outFields[i]] = v
		}
		out = append(out, m)
	}
	return out
}

// TestRsyslogTLS forwards audit records to a real rsyslogd over RFC 5425 (TLS, test
// certificates made here) and reads what rsyslog parsed: every record once, in order,
// as RFC 5424 (version 1, PRI local0.notice or .warning, the host, app patchgate, no
// procid, the action as MSGID, the record in structured data); then the server goes
// away, records are written meanwhile, it comes back on the same port and gets them,
// nothing lost.
func TestRsyslogTLS(t *testing.T) {
	rs := newRsyslogd(t)
	rs.start()
	tr := &trail{}
	tr.add(20)
	tr.mu.Lock()
	tr.recs[2].Details = map[string]string{"remark": `a "quoted" ] \ value`}
	tr.mu.Unlock()
	run := start(t, options(t, tr, t.TempDir()), syslogTarget(t, "127.0.0.1:"+strconv.Itoa(rs.port), filepath.Join(rs.dir, "ca.pem")))
	waitLines := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); len(rs.lines()) < n; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd wrote %d messages, want %d; forwarder %+v\n%s", len(rs.lines()), n, run.s.Status(), rs.stderr.String())
			}
		}
	}
	waitLines(20)

	// The server goes away; what is written meanwhile arrives when it is back.
	rs.stop()
	tr.add(10)
	clocktest.WaitFor(t, "a failed send while rsyslogd is down", func() bool { return run.s.Status()[0].Error != "" })
	rs.start()
	waitLines(30)
	clocktest.WaitFor(t, "backlog 0", func() bool { return run.s.Status()[0].Backlog == 0 })

	lines := rs.lines()
	var seqs []uint64
	for i, l := range lines {
		m := seqRE.FindStringSubmatch(l["structured-data"])
		if m == nil {
			t.Fatalf("message %d: structured data %q has no audit@32473 seq", i, l["structured-data"])
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		seqs = append(seqs, seq)
		rec := tr.recs[seq-1]
		pri := "133" // local0 (16) * 8 + notice (5)
		if rec.Action == "deployment.failed" {
			pri = "132" // warning
		}
		ts, err := time.Parse(time.RFC3339Nano, l["timereported"])
		for k, want := range map[string]string{"protocol-version": "1", "pri": pri, "hostname": "gw1", "app-name": "patchgate",
			"procid": "-", "msgid": rec.Action} {
			if l[k] != want {
				t.Errorf("message %d (seq %d): %s = %q, want %q (line %q)", i, seq, k, l[k], want, l)
			}
		}
		if err != nil || !ts.Equal(rec.Time.Truncate(time.Microsecond)) { // RFC 5424 TIME-SECFRAC: microseconds
			t.Errorf("message %d: TIMESTAMP %q (%v), want %s", i, l["timereported"], err, rec.Time.Format(time.RFC3339Nano))
		}
		if !strings.Contains(l["structured-data"], `action="`+rec.Action+`"`) || !strings.Contains(l["msg"], rec.Object) {
			t.Errorf("message %d: structured data %q / msg %q lack the action or object", i, l["structured-data"], l["msg"])
		}
	}
	if !equal(seqs, inOrder(30)) {
		t.Errorf("rsyslogd got records %v, want 1..30 in order, once", seqs)
	}
	if sd := lines[2]["structured-data"]; !strings.Contains(sd, `[details@32473 remark="a \"quoted\" \] \\ value"]`) {
		t.Errorf("escaped SD-PARAM value as rsyslog parsed it: %q", sd)
	}
}
