package cache

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		requests:         counterVec("patchgate_cache_requests_total", "Endpoint requests by repository, kind (target, metadata) and HTTP status code.", "repo", "kind", "code"),
		hits:             counterVec("patchgate_cache_hits_total", "Target requests answered from the store.", "repo"),
		misses:           counterVec("patchgate_cache_misses_total", "Target requests that needed an upstream download (or a wait for one).", "repo"),
		servedBytes:      counterVec("patchgate_cache_served_bytes_total", "Target bytes sent to endpoints.", "repo"),
		refusals:         counterVec("patchgate_cache_gate_refusals_total", "Target requests the serving gate refused.", "repo"),
		fetches:          counterVec("patchgate_cache_upstream_fetches_total", "Upstream target downloads by result (ok, verify_failed, error).", "repo", "result"),
		upstreamBytes:    counterVec("patchgate_cache_upstream_bytes_total", "Target bytes received from upstreams.", "repo"),
		resumes:          counterVec("patchgate_cache_upstream_resumes_total", "Upstream downloads resumed with a Range request.", "repo"),
		coalesced:        counterVec("patchgate_cache_coalesced_requests_total", "Requests that waited for a download already in flight instead of starting one.", "repo"),
		verifyFailures:   counterVec("patchgate_cache_verification_failures_total", "Upstream downloads discarded because length or hashes did not match verified metadata.", "repo"),
		upstreamFailures: counterVec("patchgate_cache_upstream_failures_total", "Upstream downloads given up because the upstream did not deliver, by reason (deadline, stalled, too_slow, short_body, status, error).", "repo", "reason"),
		evictions:        counter("patchgate_cache_evictions_total", "Objects evicted to stay within the quota."),
		evictedBytes:     counter("patchgate_cache_evicted_bytes_total", "Bytes evicted to stay within the quota."),
		scrubbedBytes:    counter("patchgate_cache_scrubbed_bytes_total", "Stored bytes re-hashed by the scrubber."),
		scrubMismatch:    counter("patchgate_cache_scrub_mismatches_total", "Stored objects the scrubber found damaged and dropped."),
		damaged:          counter("patchgate_cache_damaged_objects_total", "Stored objects found with the wrong size when served, and dropped."),
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_cache_objects", Help: "Objects in the store."},
			func() float64 { n, _ := c.store.stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_cache_stored_bytes", Help: "Bytes in the store."},
			func() float64 { _, b := c.store.stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_cache_quota_bytes", Help: "The store's quota (0: none)."},
			func() float64 { return float64(c.cfg.QuotaBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_cache_downloads_in_flight", Help: "Upstream downloads in progress."},
			func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(len(c.inflight)) }),
	}
	var errs []error
	for _, col := range append([]prometheus.Collector{m.requests, m.hits, m.misses, m.servedBytes, m.refusals, m.fetches,
		m.upstreamBytes, m.resumes, m.coalesced, m.verifyFailures, m.upstreamFailures, m.evictions, m.evictedBytes, m.scrubbedBytes,
		m.scrubMismatch, m.damaged}, gauges...) {
		errs = append(errs, reg.Register(col))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}
