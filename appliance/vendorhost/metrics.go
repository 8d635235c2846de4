package vendorhost

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	requests   *prometheus.CounterVec
	issued     prometheus.Counter
	tlsRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	set := metric.New(reg, "vendorhost")
	m := &metrics{
		requests: set.CounterVec("requests_total",
			"Requests for vendor host names: target (handed to the cache, which counts the answer), not_available (a mapped host, no verified target for the path), unknown_host (a vendor listener asked for a host no repository maps).", "result"),
		issued:     set.Counter("certificates_issued_total", "Leaf certificates issued by the site CA for mapped vendor names."),
		tlsRefused: set.Counter("tls_refused_total", "TLS handshakes refused because the SNI name is missing or not mapped."),
	}
	for _, r := range []string{"target", "not_available", "unknown_host"} {
		m.requests.WithLabelValues(r)
	}
	set.GaugeFunc("mapped_hosts", "Vendor host names mapped by config or by verified vendor_urls.", func() float64 { return float64(len(s.Hosts())) })
	set.GaugeFunc("asked_rows", `Rows in the "asked for, not available" record.`, func() float64 { return float64(s.asked.len()) })
	set.GaugeFunc("bad_vendor_urls", "Signed vendor_urls entries skipped at the last index build (not http(s) URLs with a DNS name and a path).", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.badURLs)
	})
	return m, set.Err()
}
