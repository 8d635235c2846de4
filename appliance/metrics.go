package appliance

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/patchgate/patchgate/metric"
)

// newRegistry makes the System's one registry, with the Go and process collectors and
// the build info.
func newRegistry(b Build) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	ms := metric.New(reg, "system")
	ms.ConstLabels = prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.Go}
	ms.Gauge("build_info", "Always 1; the labels say which Patchgate is running.").Set(1)
	mustRegister(ms)
	return reg
}

// mustRegister panics on a registration error: the System's own metrics go on its
// fresh registry, so one is a programming error.
func mustRegister(ms *metric.Set) {
	if err := ms.Err(); err != nil {
		panic(err)
	}
}

// registerServiceMetrics exports each service's readiness and problem count, read at
// scrape time.
func (s *System) registerServiceMetrics() {
	ms := metric.New(s.registry, "system")
	ready := ms.Desc("service_ready", "1 when the service is ready, else 0.", "service")
	problems := ms.Desc("service_problems", "Current health problems of the service, by severity.", "service", "severity")
	start := ms.Desc("start_time_seconds", "When the System was built, in Unix seconds.")
	ms.Register(collectorFunc{
		descs: []*prometheus.Desc{ready, problems, start},
		collect: func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(start, prometheus.GaugeValue, float64(s.started.UnixNano())/1e9)
			for _, svc := range s.services {
				v := 0.0
				if svc.Ready() {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(ready, prometheus.GaugeValue, v, svc.Name())
				counts := map[string]float64{"info": 0, "warning": 0, "error": 0}
				for _, p := range svc.Health() {
					counts[p.Severity.String()]++
				}
				for sev, n := range counts {
					ch <- prometheus.MustNewConstMetric(problems, prometheus.GaugeValue, n, svc.Name(), sev)
				}
			}
		},
	})
	mustRegister(ms)
}

// collectorFunc is a prometheus.Collector from a function.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// metricName is the shape every Patchgate metric name has.
var metricName = regexp.MustCompile(`^patchgate_[a-z]+_[a-z0-9_]+$`)
