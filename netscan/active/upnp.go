package active

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/passive"
)

// probeSSDP sends one unicast M-SEARCH (UPnP 1.1) to h's port 1900 and, if
// the answer's LOCATION is on h itself and on a port not on the deny-list,
// fetches the device description it names.
func (sc *scan) probeSSDP(ctx context.Context, h *host) {
	if err := sc.charge(ctx, h, ProbeSSDP, 1); err != nil {
		return
	}
	hostPort := netip.AddrPortFrom(h.addr, sc.cfg.SSDPPort).String()
	c, err := net.Dial("udp", hostPort)
	if err != nil {
		return
	}
	defer c.Close()
	msg := "M-SEARCH * HTTP/1.1\r\nHOST: " + hostPort + "\r\nMAN: \"ssdp:discover\"\r\nST: upnp:rootdevice\r\nUSER-AGENT: " + userAgent + "\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(sc.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	o := sc.obs(netscan.SourceSSDPQ, h)
	if ok, err := passive.ParseSSDP(buf[:n], &o); err != nil || !ok {
		return
	}
	sc.send(o)
	if loc := o.Get(netscan.KeySSDPLocation); loc != "" {
		sc.fetchDescription(ctx, h, loc)
	}
}

// fetchDescription reads a UPnP device description from h.
func (sc *scan) fetchDescription(ctx context.Context, h *host, loc string) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "http" {
		return
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil || ip.Unmap() != h.addr {
		return // only the host being probed, by address
	}
	port := 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return
		}
	}
	if Denied(uint16(port)) {
		return
	}
	client := sc.httpClient(h, ProbeSSDP)
	defer client.CloseIdleConnections()
	body, err := get(ctx, client, u.String())
	if err != nil {
		return
	}
	o := sc.obs(netscan.SourceUPnP, h)
	if err := ParseDescription(body, &o); err != nil {
		return
	}
	if len(o.Facts) > 0 {
		sc.send(o)
	}
}

// ParseDescription reads the root device of a UPnP device description
// into o.
func ParseDescription(b []byte, o *netscan.Observation) error {
	var d struct {
		Device struct {
			DeviceType   string `xml:"deviceType"`
			FriendlyName string `xml:"friendlyName"`
			Manufacturer string `xml:"manufacturer"`
			ModelName    string `xml:"modelName"`
			ModelNumber  string `xml:"modelNumber"`
			SerialNumber string `xml:"serialNumber"`
			UDN          string `xml:"UDN"`
		} `xml:"device"`
	}
	if err := xml.Unmarshal(b, &d); err != nil {
		return err
	}
	if d.Device.UDN == "" && d.Device.DeviceType == "" {
		return errors.New("active: upnp description without a device")
	}
	o.Add(netscan.KeyUPnPDeviceType, d.Device.DeviceType)
	o.Add(netscan.KeyUPnPFriendlyName, d.Device.FriendlyName)
	o.Add(netscan.KeyUPnPManufacturer, d.Device.Manufacturer)
	o.Add(netscan.KeyUPnPModelName, d.Device.ModelName)
	o.Add(netscan.KeyUPnPModelNumber, d.Device.ModelNumber)
	o.Add(netscan.KeyUPnPSerial, d.Device.SerialNumber)
	o.Add(netscan.KeyUPnPUDN, lowerUUID(d.Device.UDN))
	return nil
}

func lowerUUID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
