package active

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/netscan"
)

// udpResponder answers every datagram on addr with answer(request); it stands in
// for a device's SSDP or mDNS responder. It records what it received.
func udpResponder(t *testing.T, addr string, answer func([]byte) []byte) (uint16, func() [][]byte) {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	var (
		mu  sync.Mutex
		got [][]byte
	)
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, append([]byte(nil), buf[:n]...))
			mu.Unlock()
			if a := answer(buf[:n]); a != nil {
				c.WriteTo(a, from)
			}
		}
	}()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func TestSSDPProbe(t *testing.T) {
	const desc = `<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:Printer:1</deviceType>
<friendlyName>Back office printer</friendlyName><manufacturer>Brother</manufacturer><modelName>MFC-L2750DW</modelName>
<serialNumber>E78234K9N123456</serialNumber><UDN>uuid:e3248000-80ce-11db-8000-008077123456</UDN></device></root>`
	httpPort := serveHTTP(t, "127.0.0.5:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/desc.xml" {
			w.Write([]byte(desc))
			return
		}
		http.NotFound(w, r)
	}))
	port, got := udpResponder(t, "127.0.0.5:0", func(req []byte) []byte {
		if !strings.HasPrefix(string(req), "M-SEARCH * HTTP/1.1\r\n") {
			return nil
		}
		return []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\n" +
			"LOCATION: http://127.0.0.5:" + strconv.Itoa(int(httpPort)) + "/desc.xml\r\nSERVER: Linux/4.4 UPnP/1.0 Brother/1.0\r\n" +
			"USN: uuid:e3248000-80ce-11db-8000-008077123456::upnp:rootdevice\r\n\r\n")
	})
	obs := scanHost(t, "127.0.0.5", httpPort, Config{SSDPPort: port, Probes: []Probe{ProbeTCP, ProbeSSDP}})
	checkFacts(t, obs, "127.0.0.5", map[netscan.Key][]string{
		netscan.KeySSDPServer:       {"Linux/4.4 UPnP/1.0 Brother/1.0"},
		netscan.KeyUPnPManufacturer: {"Brother"},
		netscan.KeyUPnPModelName:    {"MFC-L2750DW"},
		netscan.KeyUPnPSerial:       {"E78234K9N123456"},
		netscan.KeyUPnPUDN:          {"uuid:e3248000-80ce-11db-8000-008077123456"},
	})
	if g := got(); len(g) != 1 || !strings.Contains(string(g[0]), "ST: upnp:rootdevice") || strings.Contains(string(g[0]), "MX:") {
		t.Errorf("responder received %q, want one unicast M-SEARCH for upnp:rootdevice without MX", g)
	}
}

// TestSSDPLocationElsewhereNotFetched: a LOCATION on another host, or on a
// deny-listed port, is not fetched.
func TestSSDPLocationElsewhereNotFetched(t *testing.T) {
	for _, loc := range []string{"http://127.0.0.9:80/desc.xml", "http://127.0.0.6:9100/desc.xml"} {
		raw := listen(t, "127.0.0.6:9100")
		port, _ := udpResponder(t, "127.0.0.6:0", func([]byte) []byte {
			return []byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: " + loc + "\r\n\r\n")
		})
		obs := scanHost(t, "127.0.0.6", 9100, Config{SSDPPort: port, Probes: []Probe{ProbeTCP, ProbeSSDP}})
		checkFacts(t, obs, "127.0.0.6", map[netscan.Key][]string{netscan.KeySSDPLocation: {loc}})
		raw.ln.Close()
		raw.wg.Wait()
		if raw.bytes.Load() != 0 {
			t.Errorf("LOCATION %s: the deny-listed port received %d bytes", loc, raw.bytes.Load())
		}
	}
}

func TestMDNSProbe(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	port, got := udpResponder(t, "127.0.0.7:0", func(b []byte) []byte {
		var q dns.Msg
		if q.Unpack(b) != nil || len(q.Question) == 0 {
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(&q)
		for _, qq := range q.Question {
			switch qq.Name {
			case "_services._dns-sd._udp.local.":
				m.Answer = append(m.Answer, rr(`_services._dns-sd._udp.local. 10 IN PTR _ipp._tcp.local.`))
			case "_ipp._tcp.local.":
				m.Answer = append(m.Answer, rr(`_ipp._tcp.local. 10 IN PTR Front\ desk._ipp._tcp.local.`))
				m.Extra = append(m.Extra, rr(`Front\ desk._ipp._tcp.local. 10 IN TXT "ty=Brother HL-L2350DW series" "usb_MFG=Brother" "usb_MDL=HL-L2350DW series"`),
					rr(`Front\ desk._ipp._tcp.local. 10 IN SRV 0 0 631 brn-front.local.`))
			}
		}
		out, _ := m.Pack()
		return out
	})
	l := listen(t, "127.0.0.7:0")
	obs := scanHost(t, "127.0.0.7", l.port(), Config{MDNSPort: port, Probes: []Probe{ProbeTCP, ProbeMDNS}})
	checkFacts(t, obs, "127.0.0.7", map[netscan.Key][]string{
		netscan.KeyMDNSService: {"_ipp._tcp"},
		netscan.KeyMDNSTy:      {"Brother HL-L2350DW series"},
		netscan.KeyMDNSUSBMfg:  {"Brother"},
		netscan.KeyHostname:    {"brn-front"},
	})
	if g := got(); len(g) != 2 {
		t.Errorf("responder got %d queries, want 2 (services, then instances)", len(g))
	}
}
