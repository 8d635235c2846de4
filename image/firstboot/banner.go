package firstboot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"text/tabwriter"
)

// BannerInfo is what the console shows once the appliance is up.
type BannerInfo struct {
	Version   string
	Addresses []netip.Addr // the appliance's own addresses, loopback excluded
	AdminPort int          // the admin listener's port
	Scheme    string       // https (the default) or http when the admin TLS is off
	Identity  Identity
}

// Banner writes the console banner: where to point a browser, the certificate
// fingerprint to compare, and the setup token while setup is not done yet.
func Banner(w io.Writer, b BannerInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nPatchgate appliance %s\n\n", b.Version)
	if len(b.Addresses) == 0 {
		fmt.Fprintf(tw, "  Admin page:\tno network address yet (DHCP, or patchgate-firstboot.yaml on the ESP)\n")
	}
	scheme := b.Scheme
	if scheme == "" {
		scheme = "https"
	}
	for _, a := range b.Addresses {
		fmt.Fprintf(tw, "  Admin page:\t%s://%s/\n", scheme, net.JoinHostPort(a.String(), strconv.Itoa(b.AdminPort)))
	}
	if b.Identity.Fingerprint != "" {
		fmt.Fprintf(tw, "  Certificate SHA-256:\t%s\n", b.Identity.Fingerprint)
	}
	if b.Identity.Token != "" {
		fmt.Fprintf(tw, "  Setup token:\t%s   (one-time: enter it on the admin page to create the first admin)\n", b.Identity.Token)
	} else {
		fmt.Fprintf(tw, "  Setup:\tno setup token logged: setup is done (else see journalctl -u patchgate)\n")
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// HostAddresses returns the addresses of the given interface addresses that a browser
// on another machine could use: no loopback, no link-local.
func HostAddresses(addrs []net.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip)
	}
	return out
}

// SetupTokenFromLog returns the setup token the daemon logged last in r, its JSON log
// lines as journald keeps them ({"msg":"first-run setup: ...","setup_token":"..."}), or
// "" when there is none (setup done). Lines that are not JSON are skipped.
func SetupTokenFromLog(r io.Reader) string {
	tok := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"setup_token"`)) {
			continue
		}
		var rec struct {
			Token string `json:"setup_token"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Token != "" && len(rec.Token) <= 128 {
			tok = rec.Token
		}
	}
	return tok
}
