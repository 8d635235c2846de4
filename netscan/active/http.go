package active

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/netscan"
)

// maxBody is the most of any HTTP body a probe reads.
const maxBody = 64 << 10

// userAgent names the prober honestly in device logs.
const userAgent = "Patchgate-inventory/1 (device discovery)"

// httpClient returns a client for h's probes: it dials only h itself, never
// a deny-listed port, charges the rate caps for each connection, keeps no
// connection open, and follows no redirect.
func (sc *scan) httpClient(h *host, probe Probe) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("active: dial %s: %w", addr, err)
		}
		if ap.Addr().Unmap() != h.addr {
			return nil, fmt.Errorf("active: dial %s: not the host being probed", addr)
		}
		if Denied(ap.Port()) {
			return nil, fmt.Errorf("active: dial %s: port is on the deny-list", addr)
		}
		// Handshake, request, response ACKs and close: charge 6.
		if err := sc.charge(ctx, h, probe, 6); err != nil {
			return nil, err
		}
		d := net.Dialer{Timeout: sc.cfg.Timeout}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout: 2 * sc.cfg.Timeout,
		Transport: &http.Transport{
			DialContext: dial,
			// Evidence only: the certificate is not trusted for anything.
			TLSClientConfig:        &tls.Config{InsecureSkipVerify: true},
			TLSHandshakeTimeout:    sc.cfg.Timeout,
			ResponseHeaderTimeout:  sc.cfg.Timeout,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: 32 << 10,
			Proxy:                  nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probeHTTP reads the Server header and the <title> of GET / on each open
// web port.
func (sc *scan) probeHTTP(ctx context.Context, h *host) {
	client := sc.httpClient(h, ProbeHTTP)
	defer client.CloseIdleConnections()
	o := sc.obs(netscan.SourceHTTP, h)
	type target struct {
		port   uint16
		scheme string
	}
	var targets []target
	for _, p := range sc.cfg.HTTPPorts {
		targets = append(targets, target{p, "http"})
	}
	for _, p := range sc.cfg.HTTPSPorts {
		targets = append(targets, target{p, "https"})
	}
	for _, p := range targets {
		if !h.isOpen(p.port) || Denied(p.port) || ctx.Err() != nil {
			continue
		}
		u := p.scheme + "://" + netip.AddrPortFrom(h.addr, p.port).String() + "/"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			continue
		}
		req.Header.Set("User-Agent", userAgent)
		req.Close = true
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		o.Add(netscan.KeyHTTPServer, resp.Header.Get("Server"))
		o.Add(netscan.KeyHTTPTitle, Title(body))
	}
	if len(o.Facts) > 0 {
		sc.send(o)
	}
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title`)

// Title returns the text of the first <title> element of an HTML page,
// unescaped with whitespace collapsed, or "".
func Title(body []byte) string {
	m := titleRE.FindSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(string(bytes.TrimSpace(m[1])))), " ")
}

// post sends one POST to h and returns the body (at most maxBody bytes).
func post(ctx context.Context, client *http.Client, u, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, err
}

// get fetches u (at most maxBody bytes) if it answers 200.
func get(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("active: get %s: status %s", u, strconv.Itoa(resp.StatusCode))
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxBody))
}
