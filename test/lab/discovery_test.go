package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/fingerprint"
	"github.com/patchgate/patchgate/netscan/scantest"
	"github.com/patchgate/patchgate/netscan/survey"
	"github.com/patchgate/patchgate/test/netlab"
)

// The lab's subnet is TEST-NET-2: documentation addresses, and they exist
// only inside the lab's namespaces.
var labNet = netip.MustParsePrefix("198.51.100.0/24")

// TestDiscovery builds a small pharmacy segment and surveys it from the
// appliance's namespace (passive listening and an active scan at once):
//
//	.2  appliance  runs the survey
//	.10 printer    Zebra MAC; snmpd answering as a ZT410 label printer,
//	               busybox httpd, an IPP listener on 631, and socat on 9100
//	               recording every byte it receives
//	.20 handheld   Zebra (Symbol) MAC; busybox udhcpc sending DHCPDISCOVERs
//	               with hostname and an Android vendor class
//	.30 announcer  Brother MAC; multicasts mDNS and SSDP announcements, answers a
//	               unicast M-SEARCH (socat) and serves its UPnP description
//	               (busybox httpd)
//	.40 phone      a randomised (locally administered) MAC, nothing else
//	.50 excluded   on the exclusion list; tcpdump records what reaches it
//
// The survey must find every live host, classify the printer and the
// handheld, send no byte to 9100, and send nothing addressed to .50.
func TestDiscovery(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped under -short")
	}
	netlab.Require(t, "snmpd", "busybox", "socat", "tcpdump", "ss")
	env := newPharmacy(t)
	scanner, printer, handheld, announcer, phone, excluded := env.scanner, env.printer, env.handheld, env.announcer, env.phone, env.excluded
	tcpdump, capPath, rawBytes := env.tcpdump, env.capPath, env.rawBytes
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := scanner.RoleCommand(ctx, "survey", "eth0", labNet.String(), excluded.Addr.String(), "6")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("survey: %v\n%s", err, stderr.String())
	}
	var rep survey.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("survey output: %v\n%s", err, out)
	}
	netlab.Stop(tcpdump)
	for _, d := range rep.Devices {
		t.Logf("%s %v %s (%.2f) vendor=%q model=%q fw=%q os=%q sources=%v", d.MAC, d.Addrs, d.Class.Type, d.Class.Confidence,
			d.Class.Vendor.Value, d.Class.Model.Value, d.Class.Firmware.Value, d.Class.OS.Value, d.Sources)
	}

	device := func(h *netlab.Host) survey.Device {
		t.Helper()
		for _, d := range rep.Devices {
			if slices.Contains(d.Addrs, h.Addr) {
				return d
			}
		}
		t.Fatalf("%s (%s) not found", h.Name, h.Addr)
		return survey.Device{}
	}
	// Every live host, found by the active sweep, with its MAC.
	for _, h := range []*netlab.Host{printer, handheld, announcer, phone} {
		d := device(h)
		if d.MAC.String() != h.MAC {
			t.Errorf("%s: MAC %s, want %s", h.Name, d.MAC, h.MAC)
		}
		if !slices.Contains(d.Sources, netscan.SourceARPSweep) {
			t.Errorf("%s: sources %v lack the ARP sweep", h.Name, d.Sources)
		}
	}
	if rep.Active.Live != 4 {
		t.Errorf("active scan found %d live hosts, want 4", rep.Active.Live)
	}

	p := device(printer)
	if p.Class.Type != fingerprint.TypeLabelPrinter {
		t.Errorf("printer classified %s (%v), want label_printer", p.Class.Type, p.Class.Scores)
	}
	for _, f := range []netscan.Fact{
		{Key: netscan.KeySNMPSysObjectID, Value: "1.3.6.1.4.1.10642.1.1"},
		{Key: netscan.KeySNMPSerial, Value: "18J123456789"},
		{Key: netscan.KeyIPPMakeModel, Value: "Zebra ZT410"},
		{Key: netscan.KeyHTTPTitle, Value: "Zebra ZT410 - Status"},
		{Key: netscan.KeyTCPOpen, Value: "9100"},
	} {
		if !slices.Contains(p.Facts, f) {
			t.Errorf("printer facts lack %s", f)
		}
	}
	if p.Class.Vendor.Value != "Zebra Technologies" || p.Class.Firmware.Value != "V75.20.01Z" {
		t.Errorf("printer vendor %q firmware %q", p.Class.Vendor.Value, p.Class.Firmware.Value)
	}

	hh := device(handheld)
	if hh.Class.Type != fingerprint.TypeMobileHandheld || hh.Class.OS.Value != "Android 11" {
		t.Errorf("handheld classified %s os %q (%v), want mobile_handheld, Android 11", hh.Class.Type, hh.Class.OS.Value, hh.Class.Scores)
	}
	if !slices.Contains(hh.Hostnames, "TC52-PHARM-01") {
		t.Errorf("handheld hostnames %v lack TC52-PHARM-01 (from DHCP)", hh.Hostnames)
	}

	an := device(announcer)
	if !slices.Contains(an.Sources, netscan.SourceMDNS) || !slices.Contains(an.Sources, netscan.SourceSSDP) {
		t.Errorf("announcer sources %v lack mdns and ssdp", an.Sources)
	}
	if an.Class.Type != fingerprint.TypePrinter {
		t.Errorf("announcer classified %s, want printer", an.Class.Type)
	}
	// The active SSDP probe and the UPnP description it led to.
	for _, f := range []netscan.Fact{
		{Key: netscan.KeyUPnPManufacturer, Value: "Brother"},
		{Key: netscan.KeyUPnPSerial, Value: "E78234K9N123456"},
	} {
		if !slices.Contains(an.Facts, f) {
			t.Errorf("announcer facts lack %s (from the UPnP description)", f)
		}
	}
	if !slices.Contains(an.Sources, netscan.SourceSSDPQ) || !slices.Contains(an.Sources, netscan.SourceUPnP) {
		t.Errorf("announcer sources %v lack ssdp-search and upnp", an.Sources)
	}
	if ph := device(phone); !ph.Random {
		t.Errorf("phone's MAC %s not recognised as randomised", ph.MAC)
	}

	// Not one byte to the raw printing port.
	if b, err := os.ReadFile(rawBytes); err != nil || len(b) != 0 {
		t.Errorf("port 9100 received %d bytes (%v), want 0", len(b), err)
	}

	// Nothing addressed to the excluded host, and the capture was live.
	addressed, broadcasts := countCapture(t, capPath, excluded.Addr, scanner.MAC)
	if addressed != 0 {
		t.Errorf("excluded host received %d packets addressed to it, want 0", addressed)
	}
	if broadcasts == 0 {
		t.Errorf("excluded host's capture saw none of the sweep's broadcasts: it proves nothing")
	}
	for _, d := range rep.Devices {
		if slices.Contains(d.Addrs, excluded.Addr) {
			t.Errorf("excluded host reported: %+v", d)
		}
	}
}

// pharmacy is the lab of TestDiscovery and TestApplianceInventory.
type pharmacy struct {
	dir                                                    string
	scanner, printer, handheld, announcer, phone, excluded *netlab.Host
	tcpdump                                                *exec.Cmd
	capPath, rawBytes                                      string
}

// newPharmacy builds the lab and starts its devices; see TestDiscovery.
func newPharmacy(t *testing.T) *pharmacy {
	t.Helper()
	dir := t.TempDir()
	lab := netlab.New(t, labNet)
	addr := func(s string) netip.Addr { return netip.MustParseAddr("198.51.100." + s) }
	scanner := lab.AddHost("appliance", netlab.HostConfig{Addr: addr("2"), MAC: "52:54:00:00:00:02"})
	printer := lab.AddHost("printer", netlab.HostConfig{Addr: addr("10"), MAC: "00:07:4d:10:20:30"})
	handheld := lab.AddHost("handheld", netlab.HostConfig{Addr: addr("20"), MAC: "00:a0:f8:44:55:66"})
	announcer := lab.AddHost("announcer", netlab.HostConfig{Addr: addr("30"), MAC: "00:80:77:12:34:56", Multicast: true})
	phone := lab.AddHost("phone", netlab.HostConfig{Addr: addr("40"), MAC: "7a:11:22:33:44:55"})
	excluded := lab.AddHost("excluded", netlab.HostConfig{Addr: addr("50"), MAC: "00:1b:54:00:00:50"})

	// The excluded host's capture starts first, so it sees the whole survey.
	capPath := filepath.Join(dir, "excluded.pcap")
	var tcpdumpErr netlab.Buffer
	tcpdump := excluded.Command(context.Background(), "tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "-w", capPath)
	tcpdump.Stderr = &tcpdumpErr
	excluded.StartCmd(t, tcpdump)

	// The printer.
	snmpConf := filepath.Join(dir, "snmpd.conf")
	writeFile(t, snmpConf, "agentaddress udp:"+printer.Addr.String()+":161\n"+
		"rocommunity public default\n"+
		"sysDescr ZTC ZT410-300dpi ZPL V75.20.01Z\n"+
		"sysObjectID .1.3.6.1.4.1.10642.1.1\n"+
		"sysName zt410-lab\n"+
		"override .1.3.6.1.2.1.43.5.1.1.17.1 octet_str \"18J123456789\"\n")
	snmpd := printer.Command(context.Background(), "snmpd", "-f", "-Lo", "-C", "-I", "-smux", "-c", snmpConf, "-p", filepath.Join(dir, "snmpd.pid"))
	snmpd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir)
	printer.StartCmd(t, snmpd)
	www := filepath.Join(dir, "www")
	writeFile(t, filepath.Join(www, "index.html"), "<html><head><title>Zebra ZT410 - Status</title></head><body>ready</body></html>")
	printer.Start(t, "busybox", "httpd", "-f", "-p", printer.Addr.String()+":80", "-h", www)
	printer.StartCmd(t, printer.RoleCommand(context.Background(), "ipp", printer.Addr.String()))
	rawBytes := filepath.Join(dir, "9100.bin")
	writeFile(t, rawBytes, "")
	printer.Start(t, "socat", "-u", "TCP-LISTEN:9100,bind="+printer.Addr.String()+",reuseaddr,fork", "OPEN:"+rawBytes+",append")

	// The handheld asks for an address for as long as the test runs.
	handheld.Start(t, "busybox", "udhcpc", "-i", "eth0", "-f", "-t", "1000", "-T", "1", "-A", "1",
		"-x", "hostname:TC52-PHARM-01", "-V", "android-dhcp-11", "-s", "/bin/true")
	announcer.StartCmd(t, announcer.RoleCommand(context.Background(), "announce", announcer.Addr.String()))
	// It also answers a unicast M-SEARCH (socat) with where its UPnP description is
	// (busybox httpd), as such printers do.
	desc := filepath.Join(dir, "upnp")
	writeFile(t, filepath.Join(desc, "desc.xml"), `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">`+
		`<specVersion><major>1</major><minor>0</minor></specVersion><device>`+
		`<deviceType>urn:schemas-upnp-org:device:Printer:1</deviceType><friendlyName>Office printer</friendlyName>`+
		`<manufacturer>Brother</manufacturer><modelName>MFC-L2750DW series</modelName><serialNumber>E78234K9N123456</serialNumber>`+
		`<UDN>uuid:e3248000-80ce-11db-8000-008077123456</UDN></device></root>`)
	answer := filepath.Join(dir, "msearch-answer.txt")
	writeFile(t, answer, "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\n"+
		"LOCATION: http://"+announcer.Addr.String()+":80/desc.xml\r\nSERVER: Linux/4.4 UPnP/1.0 Brother-Printer/1.0\r\n"+
		"USN: uuid:e3248000-80ce-11db-8000-008077123456::upnp:rootdevice\r\n\r\n")
	announcer.Start(t, "busybox", "httpd", "-f", "-p", announcer.Addr.String()+":80", "-h", desc)
	announcer.Start(t, "socat", "UDP4-RECVFROM:1900,bind="+announcer.Addr.String()+",fork", "SYSTEM:cat "+answer)

	waitFor(t, printer, "ss -H -lun 'sport = :161'")
	waitFor(t, printer, "ss -H -ltn 'sport = :80'")
	waitFor(t, printer, "ss -H -ltn 'sport = :631'")
	waitFor(t, printer, "ss -H -ltn 'sport = :9100'")
	waitFor(t, announcer, "ss -H -lun 'sport = :1900'")
	waitFor(t, announcer, "ss -H -ltn 'sport = :80'")
	waitForOutput(t, &tcpdumpErr, "listening on")

	return &pharmacy{dir: dir, scanner: scanner, printer: printer, handheld: handheld, announcer: announcer, phone: phone,
		excluded: excluded, tcpdump: tcpdump, capPath: capPath, rawBytes: rawBytes}
}

// countCapture counts the frames of a pcap addressed to addr (IPv4
// destination, or ARP target), and the broadcast ARP requests from src.
func countCapture(t *testing.T, path string, addr netip.Addr, src string) (addressed, broadcasts int) {
	t.Helper()
	r := scantest.OpenPcap(t, path)
	srcMAC, _ := netscan.ParseMAC(src)
	a4 := addr.As4()
	for {
		b, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if len(b) < 14 {
			continue
		}
		switch binary.BigEndian.Uint16(b[12:]) {
		case 0x0800:
			if len(b) >= 34 && bytes.Equal(b[30:34], a4[:]) {
				addressed++
			}
		case 0x0806:
			if len(b) >= 42 && bytes.Equal(b[38:42], a4[:]) {
				addressed++
			} else if netscan.MACFrom(b[6:12]) == srcMAC {
				broadcasts++
			}
		}
	}
	return addressed, broadcasts
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a shell condition inside h until it prints something (10s at most).
func waitFor(t *testing.T, h *netlab.Host, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := h.Command(context.Background(), "sh", "-c", cond).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q never held", h.Name, cond)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitForOutput(t *testing.T, b *netlab.Buffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q in %q", s, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
