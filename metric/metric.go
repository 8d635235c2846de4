// Package metric builds a subsystem's Prometheus metrics on the registry it is handed
// (one per System; never the global one), named patchgate_<subsystem>_<name>, where
// name ends with the unit (_total, _seconds, _bytes...). It is a leaf: it imports
// nothing of the project's, so cache, tuf and netscan use it too.
package metric

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the first part of every metric name.
const Namespace = "patchgate"

// Set makes one subsystem's metrics and registers each as it is made. Registration
// errors are kept for Err, so a constructor reads as a list of metrics followed by one
// error check. It is not safe for concurrent use (the metrics it makes are).
type Set struct {
	reg       prometheus.Registerer
	subsystem string
	errs      []error

	// ConstLabels, when set, are put on every metric made afterwards (e.g. repo=<name>
	// for one of several instances of a subsystem).
	ConstLabels prometheus.Labels
}

// New returns a Set that registers on reg (nil: the metrics work but are registered
// nowhere) under patchgate_<subsystem>_.
func New(reg prometheus.Registerer, subsystem string) *Set {
	return &Set{reg: reg, subsystem: subsystem}
}

// Name is the full name of the subsystem's metric name: patchgate_<subsystem>_<name>.
func (s *Set) Name(name string) string { return prometheus.BuildFQName(Namespace, s.subsystem, name) }

// Register registers c (a collector of the subsystem's own, or one made here).
func (s *Set) Register(c prometheus.Collector) {
	if s.reg == nil {
		return
	}
	if err := s.reg.Register(c); err != nil {
		s.errs = append(s.errs, err)
	}
}

// Err is every registration error so far, joined; nil when there was none.
func (s *Set) Err() error { return errors.Join(s.errs...) }

func register[C prometheus.Collector](s *Set, c C) C {
	s.Register(c)
	return c
}

// Counter makes and registers a counter.
func (s *Set) Counter(name, help string) prometheus.Counter {
	return register(s, prometheus.NewCounter(prometheus.CounterOpts(s.opts(name, help))))
}

// CounterVec makes and registers a counter with labels.
func (s *Set) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(s, prometheus.NewCounterVec(prometheus.CounterOpts(s.opts(name, help)), labels))
}

// Gauge makes and registers a gauge.
func (s *Set) Gauge(name, help string) prometheus.Gauge {
	return register(s, prometheus.NewGauge(prometheus.GaugeOpts(s.opts(name, help))))
}

// GaugeVec makes and registers a gauge with labels.
func (s *Set) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(s, prometheus.NewGaugeVec(prometheus.GaugeOpts(s.opts(name, help)), labels))
}

// GaugeFunc makes and registers a gauge whose value value returns at scrape time.
func (s *Set) GaugeFunc(name, help string, value func() float64) prometheus.GaugeFunc {
	return register(s, prometheus.NewGaugeFunc(prometheus.GaugeOpts(s.opts(name, help)), value))
}

// Histogram makes and registers a histogram with buckets.
func (s *Set) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	o := s.opts(name, help)
	return register(s, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: o.Namespace, Subsystem: o.Subsystem,
		Name: o.Name, Help: o.Help, ConstLabels: o.ConstLabels, Buckets: buckets}))
}

// HistogramVec makes and registers a histogram with buckets and labels.
func (s *Set) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	o := s.opts(name, help)
	return register(s, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: o.Namespace, Subsystem: o.Subsystem,
		Name: o.Name, Help: o.Help, ConstLabels: o.ConstLabels, Buckets: buckets}, labels))
}

// Desc describes a metric a collector of the subsystem's own sends at scrape time
// (register the collector with Register).
func (s *Set) Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(s.Name(name), help, labels, s.ConstLabels)
}

func (s *Set) opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: Namespace, Subsystem: s.subsystem, Name: name, Help: help, ConstLabels: s.ConstLabels}
}
