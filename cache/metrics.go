package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	requests       *prometheus.CounterVec
	hits           *prometheus.CounterVec
	misses         *prometheus.CounterVec
	servedBytes    *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	fetches        *prometheus.CounterVec
	upstreamBytes  *prometheus.CounterVec
	resumes        *prometheus.CounterVec
	coalesced      *prometheus.CounterVec
	verifyFailures *prometheus.CounterVec
	// upstreamFailures counts downloads given up on, by reason.
	upstreamFailures *prometheus.CounterVec
	evictions        prometheus.Counter
	evictedBytes     prometheus.Counter
	scrubbedBytes    prometheus.Counter
	scrubMismatch    prometheus.Counter
	damaged          prometheus.Counter

	// repos holds each configured repository's per-request series,
	// resolved once (read-only after New).
	repos map[string]*repoMetrics
}

// repoMetrics are the series a request of one repository updates.
type repoMetrics struct {
	hits, served         prometheus.Counter
	targetOK, metadataOK prometheus.Counter // requests_total{code="200"}
}

func (m *metrics) addRepos(names []string) {
	m.repos = make(map[string]*repoMetrics, len(names))
	for _, n := range names {
		m.repos[n] = &repoMetrics{
			hits:       m.hits.WithLabelValues(n),
			served:     m.servedBytes.WithLabelValues(n),
			targetOK:   m.requests.WithLabelValues(n, "target", "200"),
			metadataOK: m.requests.WithLabelValues(n, "metadata", "200"),
		}
	}
}

// repo returns the series of a configured repository.
func (m *metrics) repo(name string) *repoMetrics { return m.repos[name] }

func newMetrics(reg prometheus.Registerer, c *Cache) (*metrics, error) {
	s := metric.New(reg, "cache")
	m := &metrics{
		requests:         s.CounterVec("requests_total", "Endpoint requests by repository, kind (target, metadata) and HTTP status code.", "repo", "kind", "code"),
		hits:             s.CounterVec("hits_total", "Target requests answered from the store.", "repo"),
		misses:           s.CounterVec("misses_total", "Target requests that needed an upstream download (or a wait for one).", "repo"),
		servedBytes:      s.CounterVec("served_bytes_total", "Target bytes sent to endpoints.", "repo"),
		refusals:         s.CounterVec("gate_refusals_total", "Target requests the serving gate refused.", "repo"),
		fetches:          s.CounterVec("upstream_fetches_total", "Upstream target downloads by result (ok, verify_failed, error).", "repo", "result"),
		upstreamBytes:    s.CounterVec("upstream_bytes_total", "Target bytes received from upstreams.", "repo"),
		resumes:          s.CounterVec("upstream_resumes_total", "Upstream downloads resumed with a Range request.", "repo"),
		coalesced:        s.CounterVec("coalesced_requests_total", "Requests that waited for a download already in flight instead of starting one.", "repo"),
		verifyFailures:   s.CounterVec("verification_failures_total", "Upstream downloads discarded because length or hashes did not match verified metadata.", "repo"),
		upstreamFailures: s.CounterVec("upstream_failures_total", "Upstream downloads given up because the upstream did not deliver, by reason (deadline, stalled, too_slow, short_body, status, error).", "repo", "reason"),
		evictions:        s.Counter("evictions_total", "Objects evicted to stay within the quota."),
		evictedBytes:     s.Counter("evicted_bytes_total", "Bytes evicted to stay within the quota."),
		scrubbedBytes:    s.Counter("scrubbed_bytes_total", "Stored bytes re-hashed by the scrubber."),
		scrubMismatch:    s.Counter("scrub_mismatches_total", "Stored objects the scrubber found damaged and dropped."),
		damaged:          s.Counter("damaged_objects_total", "Stored objects found with the wrong size when served, and dropped."),
	}
	s.GaugeFunc("objects", "Objects in the store.", func() float64 { n, _ := c.store.stats(); return float64(n) })
	s.GaugeFunc("stored_bytes", "Bytes in the store.", func() float64 { _, b := c.store.stats(); return float64(b) })
	s.GaugeFunc("quota_bytes", "The store's quota (0: none).", func() float64 { return float64(c.cfg.QuotaBytes) })
	s.GaugeFunc("downloads_in_flight", "Upstream downloads in progress.", func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(len(c.inflight)) })
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
