package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/image/abupdate"
)

// grownMiB is how much larger than the image the test's disk is.
const grownMiB = 1024

// layout is image/out/test/layout.env, written by image/scripts/build.sh.
type layout struct {
	dir, version, good, bad string
	badTries                int
	espOffset               int64
	slotOffset              [2]int64 // root A, root B
}

func readLayout(t *testing.T, dir string) layout {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "test", "layout.env"))
	if err != nil {
		t.Fatalf("%v (build with TEST_ARTIFACTS=1: make image-test does)", err)
	}
	defer f.Close()
	l := layout{dir: dir}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "VERSION":
			l.version = v
		case "GOOD_VERSION":
			l.good = v
		case "BAD_VERSION":
			l.bad = v
		case "BAD_TRIES":
			l.badTries, _ = strconv.Atoi(v)
		case "ESP_OFFSET":
			l.espOffset, _ = strconv.ParseInt(v, 10, 64)
		case "ROOT_A_OFFSET":
			l.slotOffset[0], _ = strconv.ParseInt(v, 10, 64)
		case "ROOT_B_OFFSET":
			l.slotOffset[1], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if l.version == "" || l.good == "" || l.bad == "" || l.badTries < 1 || l.espOffset == 0 || l.slotOffset[0] == 0 || l.slotOffset[1] == 0 {
		t.Fatalf("layout.env incomplete: %+v", l)
	}
	return l
}

func need(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PATCHGATE_IMAGE_DIR")
	if dir == "" {
		t.Skip("boots the appliance image in QEMU (minutes): run `make image-test`, or set PATCHGATE_IMAGE_DIR to an image/out built with TEST_ARTIFACTS=1")
	}
	for _, p := range []string{"qemu-system-x86_64", "mcopy", "mdir"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (apt-get install qemu-system-x86 mtools)", p)
		}
	}
	for _, f := range []string{firmware.code, firmware.vars} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs OVMF firmware %s (apt-get install ovmf)", f)
		}
	}
	return dir
}

// timeout reads a duration from the environment, for slow machines.
func timeout(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// esp runs an mtools command on the test disk's ESP.
func esp(t *testing.T, l layout, disk string, tool string, args ...string) string {
	t.Helper()
	img := fmt.Sprintf("%s@@%d", disk, l.espOffset)
	cmd := exec.Command(tool, append([]string{"-i", img}, args...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", tool, args, err, out)
	}
	return string(out)
}

// fingerprintRE finds the certificate fingerprint of the console banner anywhere in a
// line: on the serial console, kernel and systemd messages can share the banner's line.
var fingerprintRE = regexp.MustCompile(`Certificate SHA-256:\s*((?:[0-9A-F]{2}:){31}[0-9A-F]{2})`)

// pinned remembers each disk's admin certificate fingerprint once a boot showed it and
// /readyz answered with it: the certificate is made at first boot and kept on /var, so
// a later boot of the same disk is checked against it even when its console banner is
// not (or not yet) readable.
var pinned sync.Map // disk path -> fingerprint

// fingerprint returns the certificate fingerprint for v's boot: the console's, else the
// one pinned for the disk at an earlier boot, else "".
func (v *vm) fingerprint() string {
	v.mu.Lock()
	for _, l := range v.lines {
		if m := fingerprintRE.FindStringSubmatch(l); m != nil {
			v.mu.Unlock()
			return m[1]
		}
	}
	v.mu.Unlock()
	if fp, ok := pinned.Load(v.disk); ok {
		return fp.(string)
	}
	return ""
}

// readyz polls /readyz through the port forward until it answers 200. The admin
// listener serves HTTPS with the certificate whose fingerprint the console banner shows
// (or an earlier boot of the same disk showed): the test pins that fingerprint. The
// admin listener of the image never serves plain HTTP, so nothing else is tried (the
// fallback to http that was here hid the real error behind a plain-HTTP one).
func readyz(ctx context.Context, t *testing.T, v *vm, port int) string {
	t.Helper()
	var last string
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", port)
	for {
		fp := v.fingerprint()
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // the certificate is self-made; VerifyConnection pins it instead
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || fp == "" {
					return errors.New("no certificate fingerprint on the console yet")
				}
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if got := strings.ToUpper(hex.EncodeToString(sum[:])); got != strings.ReplaceAll(fp, ":", "") {
					return fmt.Errorf("certificate SHA-256 %s, console says %s", got, fp)
				}
				return nil
			},
		}}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				pinned.Store(v.disk, fp)
				return "https"
			}
			last = fmt.Sprintf("%s: %s: %s", url, resp.Status, body)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET /readyz through the port forward: never 200; last: %s\nconsole tail:\n%s", last, v.tail(30))
		case <-time.After(time.Second):
		}
	}
}

// TestImageBoot boots the image on a disk larger than the image (first boot must grow
// /var) and waits for the daemon; installs a good next version, which must come up and
// be blessed; has an admin's rollback go back to the first version through the root
// installer's units; then installs a broken version, which must fail its tries and fall
// back by itself.
func TestImageBoot(t *testing.T) {
	dir := need(t)
	l := readLayout(t, dir)
	work := t.TempDir()
	disk := filepath.Join(work, "disk.raw")
	copyFile(t, filepath.Join(dir, fmt.Sprintf("patchgate-%s.raw", l.version)), disk)
	// A disk larger than the image, as a site's VM disk or USB stick is: first boot must
	// grow the data partition (/var) to its end.
	if err := os.Truncate(disk, fileSize(t, disk)+grownMiB<<20); err != nil {
		t.Fatal(err)
	}
	// The shipped UKI, rebuilt with patchgate.smoke=1 on its command line: the only
	// difference from the image as shipped.
	esp(t, l, disk, "mcopy", "-o", filepath.Join(dir, "test", "patchgate_"+l.version+".efi"), "::/EFI/Linux/patchgate_"+l.version+".efi")
	port := freePort(t)
	bootTimeout := timeout("PATCHGATE_IMAGE_BOOT_TIMEOUT", 10*time.Minute)

	t.Run("boot", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		defer cancel()
		v := startVM(t, work, disk, port, filepath.Join(dir, "test", "serial-boot.log"))
		i := v.waitLine(ctx, 0, "PATCHGATE-BOOT: version="+l.version)
		v.waitLine(ctx, i, "PATCHGATE-SMOKE: ready version="+l.version)
		t.Logf("boot to daemon ready: %s", time.Since(v.started).Round(time.Second))
		// /var must be the data partition (256 MiB in the image), grown by the disk's
		// extra space, not the read-only root's directory.
		if line := v.find("PATCHGATE-VAR: size_mb="); line == "" {
			t.Error("no PATCHGATE-VAR line on the console")
		} else if mb, _ := strconv.Atoi(strings.TrimSpace(line[strings.Index(line, "=")+1:])); mb < 256+grownMiB*8/10 || mb > 256+grownMiB {
			t.Errorf("/var is %d MiB; want the data partition grown from 256 MiB by the disk's extra %d MiB", mb, grownMiB)
		}
		if v.find("patchgate-growdata: /dev/") == "" {
			t.Error("no patchgate-growdata line on the console")
		}
		scheme := readyz(ctx, t, v, port)
		t.Logf("boot to /readyz (%s) through the forward: %s", scheme, time.Since(v.started).Round(time.Second))
		v.powerdown(ctx)
	})
	if t.Failed() {
		return
	}

	if os.Getenv("PATCHGATE_IMAGE_INSTALL_IN_VM") == "1" {
		t.Run("update-in-vm-then-broken-update-falls-back", func(t *testing.T) { updateInVM(t, l, work, disk, port, bootTimeout) })
		return
	}

	// By default the test installs the next versions from the host side, doing what
	// abupdate.Updater.Install does on the appliance (its own tests cover that code;
	// installing inside the emulated VM takes ~20 minutes per version on a busy 2-core
	// machine): the root image into the slot not running, the UKI with a boot counter,
	// the entries of the overwritten slot removed.
	t.Run("update-blessed", func(t *testing.T) {
		install(t, l, disk, l.good, 1, 3)
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		defer cancel()
		v := startVM(t, work, disk, port, filepath.Join(dir, "test", "serial-update.log"))
		i := v.waitLine(ctx, 0, "PATCHGATE-BOOT: version="+l.good)
		// Blessed: systemd-bless-boot removed the counter once the daemon was up.
		i = v.waitEntry(ctx, i, l.good, "good yes")
		v.readyThenOff(ctx, t, i, l.good, port, l.good+" up and blessed")
		espHolds(t, l, disk, "patchgate_"+l.good+".efi", "blessed, no counter")
	})
	if t.Failed() {
		return
	}

	t.Run("admin-rollback", func(t *testing.T) {
		// The good version runs from slot B; the first one is still good in slot A. The
		// marker makes the smoke unit write an admin's rollback request; the installer
		// (patchgate-selfupdate.path/.service) marks the running version bad and reboots.
		marker := filepath.Join(work, "pg-rollback")
		if err := os.WriteFile(marker, []byte("rollback\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		esp(t, l, disk, "mcopy", marker, "::/pg-rollback")
		ctx, cancel := context.WithTimeout(context.Background(), 2*bootTimeout)
		defer cancel()
		v := startVM(t, work, disk, port, filepath.Join(dir, "test", "serial-rollback.log"))
		i := v.waitLine(ctx, 0, "PATCHGATE-BOOT: version="+l.good)
		i = v.waitLine(ctx, i, "PATCHGATE-ROLLBACK: requested")
		t.Logf("rollback requested on %s: %s", l.good, time.Since(v.started).Round(time.Second))
		i = v.waitLine(ctx, i, "PATCHGATE-BOOT: version="+l.version)
		i = v.waitEntry(ctx, i, l.good, "bad")
		i = v.waitMatch(ctx, i, regexp.MustCompile(`PATCHGATE-RESULT: .*"action":"rollback","version":"`+regexp.QuoteMeta(l.version)+`","ok":true`))
		v.readyThenOff(ctx, t, i, l.version, port, "rolled back to "+l.version)
		espHolds(t, l, disk, "patchgate_"+l.good+"+0-0.efi", "marked bad by the rollback")
	})
	if t.Failed() {
		return
	}

	t.Run("broken-update-falls-back", func(t *testing.T) {
		// The first version runs from slot A again, so the broken one goes into slot B,
		// whose entry (the good version, marked bad by the rollback) goes.
		esp(t, l, disk, "mdel", "::/EFI/Linux/patchgate_"+l.good+"+0-0.efi")
		install(t, l, disk, l.bad, 1, l.badTries)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(l.badTries+1)*bootTimeout)
		defer cancel()
		v := startVM(t, work, disk, port, filepath.Join(dir, "test", "serial-fallback.log"))
		i := v.waitBrokenBoots(ctx, t, 0, l)
		i = v.waitLine(ctx, i, "PATCHGATE-BOOT: version="+l.version)
		i = v.waitEntry(ctx, i, l.bad, "bad")
		v.readyThenOff(ctx, t, i, l.version, port, "fell back to "+l.version)
		checkFinalESP(t, l, disk, l.version, l.good)
	})
}

// readyThenOff waits from console line i for version's daemon to be ready, logs how
// long that took since the VM started (as what), checks /readyz through the port
// forward and powers the VM off.
func (v *vm) readyThenOff(ctx context.Context, t *testing.T, i int, version string, port int, what string) {
	t.Helper()
	v.waitLine(ctx, i, "PATCHGATE-SMOKE: ready version="+version)
	t.Logf("%s: %s", what, time.Since(v.started).Round(time.Second))
	readyz(ctx, t, v, port)
	v.powerdown(ctx)
}

// waitEntry waits from console line i for the smoke unit's line about version's boot
// entry with the given fields ("good yes": blessed; "bad": marked bad).
func (v *vm) waitEntry(ctx context.Context, i int, version, fields string) int {
	re := `PATCHGATE-ENTRY: ` + regexp.QuoteMeta(version)
	for _, f := range strings.Fields(fields) {
		re += `\s+` + regexp.QuoteMeta(f)
	}
	return v.waitMatch(ctx, i, regexp.MustCompile(re+`\s`))
}

// waitBrokenBoots waits from console line i for the broken version to boot each of its
// tries, logging each, and returns the line after the last.
func (v *vm) waitBrokenBoots(ctx context.Context, t *testing.T, i int, l layout) int {
	t.Helper()
	for n := 1; n <= l.badTries; n++ {
		i = v.waitLine(ctx, i, "PATCHGATE-BOOT: version="+l.bad)
		t.Logf("broken %s booting, try %d of %d: %s", l.bad, n, l.badTries, time.Since(v.started).Round(time.Second))
		i++
	}
	return i
}

// espHolds checks that the ESP's /EFI/Linux holds file (why says what that means).
func espHolds(t *testing.T, l layout, disk, file, why string) {
	t.Helper()
	if listing := esp(t, l, disk, "mdir", "-b", "::/EFI/Linux"); !strings.Contains(listing, file) {
		t.Errorf("ESP holds:\n%s\nwant %s (%s)", listing, file, why)
	}
}

// checkFinalESP: after the broken update, the ESP holds the version that kept running
// (blessed) and the broken one (marked bad), and nothing of the version whose slot the
// broken one overwrote.
func checkFinalESP(t *testing.T, l layout, disk, kept, overwritten string) {
	t.Helper()
	listing := esp(t, l, disk, "mdir", "-b", "::/EFI/Linux")
	for _, want := range []string{"patchgate_" + kept + ".efi", fmt.Sprintf("patchgate_%s+0-%d.efi", l.bad, l.badTries)} {
		if !strings.Contains(listing, want) {
			t.Errorf("ESP holds:\n%s\nwant %s", listing, want)
		}
	}
	if strings.Contains(listing, "patchgate_"+overwritten) {
		t.Errorf("ESP holds:\n%s\nwant no entry for %s (its slot was overwritten)", listing, overwritten)
	}
}

// install puts version's bundle (image/out/test/updates) onto the disk from the host:
// the root image, decompressed and checked against the manifest, into slot (0 = A,
// 1 = B), and the UKI onto the ESP with a boot counter of tries.
func install(t *testing.T, l layout, disk, version string, slot, tries int) {
	t.Helper()
	dir := filepath.Join(l.dir, "test", "updates")
	data, err := os.ReadFile(filepath.Join(dir, "patchgate-"+version+".update.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abupdate.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	gzf, err := os.Open(filepath.Join(dir, m.Root.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer gzf.Close()
	zr, err := gzip.NewReader(gzf)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(io.NewOffsetWriter(f, l.slotOffset[slot]), h), zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != m.Root.RawLength || got != m.Root.RawSHA256 {
		t.Fatalf("root image of %s: %d bytes sha256 %s, manifest says %d %s", version, n, got, m.Root.RawLength, m.Root.RawSHA256)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	esp(t, l, disk, "mcopy", filepath.Join(dir, m.UKI.Name), fmt.Sprintf("::/EFI/Linux/patchgate_%s+%d-0.efi", version, tries))
}

// updateInVM boots with a disk of update bundles, which the smoke unit installs one by
// one with `patchgate image install --manifest`: the good next version (which must come
// up and be blessed), then the broken one (which must fall back to the good one).
func updateInVM(t *testing.T, l layout, work, disk string, port int, bootTimeout time.Duration) {
	boots := 4 + l.badTries // V, good, bad (tries), good again; plus one for the installs
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(boots)*bootTimeout)
	defer cancel()
	v := startVM(t, work, disk, port, filepath.Join(l.dir, "test", "serial-update.log"), filepath.Join(l.dir, "test", "updates.img"))
	since := func() time.Duration { return time.Since(v.started).Round(time.Second) }
	i := v.waitLine(ctx, 0, "PATCHGATE-SMOKE: ready version="+l.version)
	i = v.waitLine(ctx, i, "PATCHGATE-UPDATE: installed "+l.good+"; rebooting")
	t.Logf("%s installed from inside the VM: %s", l.good, since())
	i = v.waitLine(ctx, i, "PATCHGATE-BOOT: version="+l.good)
	i = v.waitEntry(ctx, i, l.good, "good yes")
	i = v.waitLine(ctx, i, "PATCHGATE-SMOKE: ready version="+l.good)
	t.Logf("%s up and blessed: %s", l.good, since())
	i = v.waitLine(ctx, i, "PATCHGATE-UPDATE: installed "+l.bad+"; rebooting")
	i = v.waitBrokenBoots(ctx, t, i, l)
	i = v.waitLine(ctx, i, "PATCHGATE-BOOT: version="+l.good)
	i = v.waitEntry(ctx, i, l.bad, "bad")
	i = v.waitLine(ctx, i, "PATCHGATE-SMOKE: ready version="+l.good)
	t.Logf("fell back to %s: %s", l.good, since())
	v.waitLine(ctx, i, "PATCHGATE-UPDATE: nothing left to install")
	readyz(ctx, t, v, port)
	v.powerdown(ctx)
	checkFinalESP(t, l, disk, l.good, l.version)
}
