package lab

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/scantest"
	"github.com/patchgate/patchgate/netscan/survey"
	"github.com/patchgate/patchgate/test/netlab"
)

func TestMain(m *testing.M) {
	netlab.RunRoles(map[string]func([]string) int{
		"survey":          roleSurvey,
		"ipp":             roleIPP,
		"announce":        roleAnnounce,
		"appliance":       roleAppliance,
		"vendorappliance": roleVendorAppliance,
	})
	os.Exit(m.Run())
}

// roleSurvey runs a survey inside the scanner's namespace and prints the
// report as JSON. Args: iface subnet exclude passive-seconds.
func roleSurvey(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "survey: want iface subnet exclude passive-seconds")
		return 2
	}
	secs, _ := strconv.Atoi(args[3])
	cfg := &active.Config{
		Subnets:      []netip.Prefix{netip.MustParsePrefix(args[1])},
		ExcludeHosts: []netip.Addr{netip.MustParseAddr(args[2])},
		Timeout:      time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := survey.Run(ctx, survey.Options{Interface: args[0], Passive: time.Duration(secs) * time.Second, Active: cfg})
	if err != nil {
		fmt.Fprintln(os.Stderr, "survey:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// roleIPP answers IPP Get-Printer-Attributes on addr:631 as a Zebra
// label printer would. Debian's ippeveprinter needs a running DNS-SD
// daemon, so this listener stands in for it. Args: addr.
func roleIPP(args []string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort(args[0], "631"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipp:", err)
		return 1
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ipp" || len(body) < 9 ||
			binary.BigEndian.Uint16(body[2:]) != 0x000b {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/ipp")
		w.Write(scantest.IPPAnswer(binary.BigEndian.Uint32(body[4:]),
			"printer-make-and-model", "Zebra ZT410",
			"printer-firmware-string-version", "V75.20.01Z",
			"printer-device-id", "MFG:Zebra Technologies;CMD:ZPL;MDL:ZT410;"))
	})}
	go waitSignal(func() { srv.Close() })
	srv.Serve(ln)
	return 0
}

// roleAnnounce multicasts an mDNS announcement of an office printer and an
// SSDP NOTIFY every 500ms until killed, as such a printer does at boot.
// Args: own address.
func roleAnnounce(args []string) int {
	addr := args[0]
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	m.Answer = []dns.RR{
		rr(`_ipp._tcp.local. 4500 IN PTR Office\ Printer._ipp._tcp.local.`),
		rr(`Office\ Printer._ipp._tcp.local. 4500 IN SRV 0 0 631 brn-office.local.`),
		rr(`Office\ Printer._ipp._tcp.local. 4500 IN TXT "ty=Brother MFC-L2750DW series" "usb_MFG=Brother" "usb_MDL=MFC-L2750DW series" "product=(Brother MFC-L2750DW series)"`),
		rr(`brn-office.local. 120 IN A ` + addr),
	}
	mdnsMsg, err := m.Pack()
	if err != nil {
		fmt.Fprintln(os.Stderr, "announce:", err)
		return 1
	}
	notify := "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n" +
		"LOCATION: http://" + addr + ":80/desc.xml\r\nNT: urn:schemas-upnp-org:device:Printer:1\r\nNTS: ssdp:alive\r\n" +
		"SERVER: Linux/4.4 UPnP/1.0 Brother-Printer/1.0\r\nUSN: uuid:e3248000-80ce-11db-8000-008077123456::urn:schemas-upnp-org:device:Printer:1\r\n\r\n"
	mc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr), Port: 5353})
	if err != nil {
		fmt.Fprintln(os.Stderr, "announce:", err)
		return 1
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "announce:", err)
		return 1
	}
	stop := make(chan struct{})
	go waitSignal(func() { close(stop) })
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		mc.WriteToUDP(mdnsMsg, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
		sc.WriteToUDP([]byte(notify), &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900})
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
	}
}

func waitSignal(f func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	f()
}
