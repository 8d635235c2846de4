package cache

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// shaperMetrics are the shaper's Prometheus metrics. The caps and the schedule's
// percent are read at scrape time, after applying any due turn of the schedule.
type shaperMetrics struct {
	s         *Shaper
	served    *prometheus.CounterVec // segment
	upstream  prometheus.Counter
	throttled *prometheus.CounterVec // budget
	caps      *prometheus.Desc
	percent   *prometheus.Desc
	active    *prometheus.Desc
}

// newShaperMetrics makes the shaper's counters on ms; the caller registers the
// shaperMetrics itself (the gauges read at scrape time) once s is built.
func newShaperMetrics(s *Shaper, ms *metric.Set) *shaperMetrics {
	return &shaperMetrics{
		s:         s,
		served:    ms.CounterVec("served_bytes_total", "Bytes of target bodies served, by the client's segment (other: in no segment).", "segment"),
		upstream:  ms.Counter("upstream_bytes_total", "Bytes fetched from upstream through the upstream budget."),
		throttled: ms.CounterVec("throttled_seconds_total", "Time downloads spent waiting for a budget (site, segment, client, upstream), summed over downloads.", "budget"),
		caps: ms.Desc("cap_bytes_per_second",
			"Current cap of a budget after the schedule's scaling; absent when the budget is not capped.", "budget", "segment"),
		percent: ms.Desc("schedule_percent", "Percent of the configured rates the schedule allows now."),
		active:  ms.Desc("active_downloads", "Shaped downloads in flight."),
	}
}

// Describe and Collect make the gauges read at scrape time.
func (m *shaperMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.caps
	ch <- m.percent
	ch <- m.active
}

func (m *shaperMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.Status()
	ch <- prometheus.MustNewConstMetric(m.percent, prometheus.GaugeValue, float64(st.Percent))
	ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, float64(st.Downloads))
	for _, b := range st.Budgets {
		if b.Cap > 0 {
			ch <- prometheus.MustNewConstMetric(m.caps, prometheus.GaugeValue, float64(b.Cap), b.Budget, b.Segment)
		}
	}
}

// ShaperStatus is the shaper's state for the status page.
type ShaperStatus struct {
	Percent   int       // of every configured rate, now
	NextTurn  time.Time // when the schedule may next change the percent
	Downloads int       // shaped downloads in flight
	Clients   int       // clients with downloads in flight
	Budgets   []ShaperBudgetStatus
}

// ShaperBudgetStatus is one budget's cap and recent use, in bytes per second. Cap is
// 0 for a budget without a cap; Use is the average over the last few seconds (for the
// client budget: of the busiest client).
type ShaperBudgetStatus struct {
	Budget  string // site, segment, client or upstream
	Segment string // for segment budgets
	Cap     int64
	Use     int64
}

// Status returns the current caps and use, applying a due turn of the schedule first.
func (s *Shaper) Status() ShaperStatus {
	s.refresh()
	st := ShaperStatus{Percent: int(s.percent.Load()), NextTurn: time.Unix(0, s.untilNano.Load()).In(s.cfg.Location)}
	capOf := func(b *shapeBudget) int64 {
		if b == nil {
			return 0
		}
		return int64(s.scaled(b.full))
	}
	var site int64
	var segs []ShaperBudgetStatus
	for _, sg := range append(slices.Clone(s.segments), s.other) {
		use := sg.meter.rate()
		site += use
		segs = append(segs, ShaperBudgetStatus{Budget: "segment", Segment: sg.name, Cap: capOf(sg.budget), Use: use})
	}
	st.Budgets = append(st.Budgets, ShaperBudgetStatus{Budget: "site", Cap: capOf(s.site), Use: site})
	st.Budgets = append(st.Budgets, segs...)
	client := ShaperBudgetStatus{Budget: "client"}
	if s.cfg.Client > 0 {
		client.Cap = int64(s.scaled(s.cfg.Client))
	}
	now := time.Now()
	s.mu.Lock()
	st.Downloads, st.Clients = s.active, len(s.clients)
	for _, c := range s.clients {
		if secs := now.Sub(c.start).Seconds(); secs > 1 {
			client.Use = max(client.Use, int64(float64(c.served.Load())/secs))
		}
	}
	s.mu.Unlock()
	st.Budgets = append(st.Budgets, client,
		ShaperBudgetStatus{Budget: "upstream", Cap: capOf(s.upstream), Use: s.upMeter.rate()})
	return st
}

// shapeMeter measures a byte rate over the last few whole seconds of real time (it
// measures the token buckets' real pacing). The zero value is ready; it is safe for
// concurrent use.
type shapeMeter struct {
	mu      sync.Mutex
	secs    [meterSeconds + 1]int64 // Unix second of each slot
	bytes   [meterSeconds + 1]int64
	started int64 // Unix second of the first byte
}

const meterSeconds = 5

func (m *shapeMeter) add(n int64) {
	sec := time.Now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started == 0 {
		m.started = sec
	}
	i := sec % int64(len(m.secs))
	if m.secs[i] != sec {
		m.secs[i], m.bytes[i] = sec, 0
	}
	m.bytes[i] += n
}

// rate is the average over the last meterSeconds complete seconds (fewer when the
// meter is younger).
func (m *shapeMeter) rate() int64 {
	now := time.Now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum int64
	for i, sec := range m.secs {
		if sec < now && sec >= now-meterSeconds {
			sum += m.bytes[i]
		}
	}
	span := min(int64(meterSeconds), now-m.started)
	if m.started == 0 || span <= 0 {
		return 0
	}
	return sum / span
}
