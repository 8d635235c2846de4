package image

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// firmware is the OVMF build the test boots with (Debian's ovmf package).
var firmware = struct{ code, vars string }{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"}

// vm is one QEMU run of a disk image: its serial console is read line by line into a
// log, and wait* calls block until a line appears.
type vm struct {
	t       *testing.T
	cmd     *exec.Cmd
	qmp     string
	done    chan struct{}
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	started time.Time
	serial  *os.File
	disk    string // the boot disk: the appliance's certificate lives on it
}

// startVM boots disk with a copy of the OVMF variables in dir, user-mode networking
// and a forward from 127.0.0.1:hostPort to the guest's port 9080.
// The serial console is copied to logPath. Extra disks are attached read-only.
func startVM(t *testing.T, dir, disk string, hostPort int, logPath string, extra ...string) *vm {
	t.Helper()
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	if _, err := os.Stat(vars); err != nil {
		copyFile(t, firmware.vars, vars)
	}
	qmp := filepath.Join(dir, fmt.Sprintf("qmp-%d.sock", time.Now().UnixNano()))
	args := []string{
		"-n", "10", "qemu-system-x86_64",
		"-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "2",
		"-nodefaults", "-display", "none", "-vga", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + firmware.code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-drive", "if=virtio,format=raw,file=" + disk,
		// restrict=on: the guest reaches nothing outside (its resolver's upstream health
		// checks, NTP, DHCP-provided servers stay inside QEMU); only the forward to the
		// admin listener, bound to host loopback, crosses.
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:9080", hostPort),
		"-device", "virtio-net-pci,netdev=n0",
		"-serial", "stdio", "-monitor", "none",
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
	}
	for _, e := range extra {
		args = append(args, "-drive", "if=virtio,format=raw,readonly=on,file="+e)
	}
	cmd := exec.Command("nice", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	serial, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{t: t, cmd: cmd, qmp: qmp, done: make(chan struct{}), changed: make(chan struct{}), started: time.Now(), serial: serial, disk: disk}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go v.read(out)
	t.Cleanup(func() {
		select {
		case <-v.done:
		default:
			_ = v.cmd.Process.Kill()
			<-v.done
		}
		serial.Close()
	})
	return v
}

func (v *vm) read(r io.Reader) {
	defer close(v.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// Seconds since QEMU started, for reading where boot time goes.
		fmt.Fprintf(v.serial, "[%6.1fs] %s\n", time.Since(v.started).Seconds(), line)
		v.mu.Lock()
		v.lines = append(v.lines, line)
		close(v.changed)
		v.changed = make(chan struct{})
		v.mu.Unlock()
	}
	_ = v.cmd.Wait()
}

// waitLine waits until a console line from index from on contains want, and returns
// its index. It fails the test at the deadline or when QEMU exits.
func (v *vm) waitLine(ctx context.Context, from int, want string) int {
	v.t.Helper()
	return v.wait(ctx, from, func(line string) bool { return strings.Contains(line, want) },
		fmt.Sprintf("showed %q", want), fmt.Sprintf("no %q on the console", want))
}

// waitMatch is waitLine for a regular expression.
func (v *vm) waitMatch(ctx context.Context, from int, re *regexp.Regexp) int {
	v.t.Helper()
	return v.wait(ctx, from, re.MatchString,
		fmt.Sprintf("matched %q", re), fmt.Sprintf("nothing matched %q on the console", re))
}

// wait waits for a console line from index from on for which match holds and returns
// its index. It fails the test at the deadline, with missing, or when QEMU exits, with
// exited, each saying what was looked for.
func (v *vm) wait(ctx context.Context, from int, match func(string) bool, exited, missing string) int {
	v.t.Helper()
	for {
		v.mu.Lock()
		for i := from; i < len(v.lines); i++ {
			if match(v.lines[i]) {
				v.mu.Unlock()
				return i
			}
		}
		from = len(v.lines)
		ch := v.changed
		v.mu.Unlock()
		select {
		case <-ch:
		case <-v.done:
			v.t.Fatalf("qemu exited before the console %s; serial log: %s", exited, v.serial.Name())
		case <-ctx.Done():
			v.t.Fatalf("%s after %s; serial log: %s (last lines:\n%s)", missing, time.Since(v.started).Round(time.Second), v.serial.Name(), v.tail(15))
		}
	}
}

// find returns the first console line containing want, or "".
func (v *vm) find(want string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range v.lines {
		if strings.Contains(l, want) {
			return l
		}
	}
	return ""
}

func (v *vm) tail(n int) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.lines) < n {
		n = len(v.lines)
	}
	return strings.Join(v.lines[len(v.lines)-n:], "\n")
}

// powerdown asks the guest to shut down (ACPI) through QMP and waits for QEMU to exit,
// so the disk is clean before the test edits it.
func (v *vm) powerdown(ctx context.Context) {
	v.t.Helper()
	conn, err := net.Dial("unix", v.qmp)
	if err != nil {
		v.t.Fatalf("qmp: %v", err)
	}
	defer conn.Close()
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		v.t.Fatalf("qmp greeting: %v", err)
	}
	for _, c := range []string{"qmp_capabilities", "system_powerdown"} {
		if _, err := fmt.Fprintf(conn, `{"execute":%q}`+"\n", c); err != nil {
			v.t.Fatalf("qmp %s: %v", c, err)
		}
		for { // skip events until the command's answer
			var msg map[string]any
			if err := dec.Decode(&msg); err != nil {
				v.t.Fatalf("qmp %s: %v", c, err)
			}
			if _, ok := msg["return"]; ok {
				break
			}
			if e, ok := msg["error"]; ok {
				v.t.Fatalf("qmp %s: %v", c, e)
			}
		}
	}
	select {
	case <-v.done:
	case <-ctx.Done():
		v.t.Fatalf("guest did not power off; serial log: %s", v.serial.Name())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	// cp keeps the raw image sparse.
	if out, err := exec.Command("cp", "--sparse=always", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v: %s", from, to, err, out)
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
