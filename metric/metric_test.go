package metric

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSetNamesAndRegisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(reg, "demo")
	s.Counter("events_total", "Events.").Inc()
	s.CounterVec("requests_total", "Requests.", "code").WithLabelValues("200").Inc()
	s.Gauge("up", "Up.").Set(1)
	s.GaugeVec("entries", "Entries.", "list").WithLabelValues("a").Set(2)
	s.GaugeFunc("objects", "Objects.", func() float64 { return 3 })
	s.Histogram("wait_seconds", "Waits.", []float64{1}).Observe(0.5)
	s.HistogramVec("query_duration_seconds", "Queries.", []float64{1}, "decision").WithLabelValues("allowed").Observe(2)
	s.ConstLabels = prometheus.Labels{"repo": "r"}
	s.Gauge("targets", "Targets.").Set(4)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()] = append(got[mf.GetName()], labels...)
		}
	}
	want := map[string][]string{
		"patchgate_demo_events_total":           nil,
		"patchgate_demo_requests_total":         {"code=200"},
		"patchgate_demo_up":                     nil,
		"patchgate_demo_entries":                {"list=a"},
		"patchgate_demo_objects":                nil,
		"patchgate_demo_wait_seconds":           nil,
		"patchgate_demo_query_duration_seconds": {"decision=allowed"},
		"patchgate_demo_targets":                {"repo=r"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gathered metrics (-want +got):\n%s", diff)
	}
	if d := s.Desc("x_total", "X.", "a").String(); !strings.Contains(d, `fqName: "patchgate_demo_x_total"`) || !strings.Contains(d, `repo="r"`) {
		t.Errorf("Desc = %s, want patchgate_demo_x_total with repo=\"r\"", d)
	}
}

func TestSetErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(reg, "demo")
	s.Counter("events_total", "Events.")
	s.Counter("events_total", "Events.")
	if s.Err() == nil {
		t.Error("Err() = nil after registering a name twice, want an error")
	}
	n := New(nil, "demo")
	n.Counter("events_total", "Events.").Inc()
	n.Counter("events_total", "Events.")
	if err := n.Err(); err != nil {
		t.Errorf("without a registry: Err() = %v, want nil", err)
	}
}

func TestWithLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(reg, "demo")
	s.CounterVec("requests_total", "Requests.", "code").WithLabelValues("200").Inc()
	s.Gauge("up", "Up.").Set(1)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		labels  prometheus.Labels
		want    map[string]string
		wantErr string
	}{
		{"none", nil, map[string]string{"patchgate_demo_requests_total": "code=200", "patchgate_demo_up": ""}, ""},
		{"site", prometheus.Labels{"site": "north"}, map[string]string{"patchgate_demo_requests_total": "code=200,site=north", "patchgate_demo_up": "site=north"}, ""},
		{"sorted", prometheus.Labels{"site": "north", "aa": "x"}, map[string]string{"patchgate_demo_requests_total": "aa=x,code=200,site=north", "patchgate_demo_up": "aa=x,site=north"}, ""},
		{"clash", prometheus.Labels{"code": "x"}, nil, `patchgate_demo_requests_total already has the label "code"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mfs, err := WithLabels(reg, tt.labels).Gather()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					var ls []string
					for _, l := range m.GetLabel() {
						ls = append(ls, l.GetName()+"="+l.GetValue())
					}
					got[mf.GetName()] = strings.Join(ls, ",")
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}
