package appliance

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newRegistry makes the System's one registry, with the Go and process collectors and
// the build info.
func newRegistry(b Build) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "patchgate_system_build_info",
		Help:        "Always 1; the labels say which Patchgate is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.Go},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// registerServiceMetrics exports each service's readiness and problem count, read at
// scrape time.
func (s *System) registerServiceMetrics() {
	ready := prometheus.NewDesc("patchgate_system_service_ready", "1 when the service is ready, else 0.", []string{"service"}, nil)
	problems := prometheus.NewDesc("patchgate_system_service_problems", "Current health problems of the service, by severity.", []string{"service", "severity"}, nil)
	start := prometheus.NewDesc("patchgate_system_start_time_seconds", "When the System was built, in Unix seconds.", nil, nil)
	s.registry.MustRegister(collectorFunc{
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
