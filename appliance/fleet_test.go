package appliance

import (
	"strings"
	"testing"
)

func TestSiteLabelOnEveryMetric(t *testing.T) {
	cfg := testConfig(t)
	cfg.Site = "north-7"
	sys, _, _ := startSystemWith(t, cfg)
	waitReady(t, sys)
	mfs, err := sys.MetricsGatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			site := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "site" {
					site = l.GetValue()
				}
			}
			if site != "north-7" {
				t.Errorf("%s: site label %q, want north-7", mf.GetName(), site)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no metrics gathered")
	}
	code, body := fetch(t, "GET", "http://"+sys.AdminAddr()+"/metrics", nil)
	if code != 200 || !strings.Contains(body, `site="north-7",version="test"`) {
		t.Errorf("/metrics lacks the site label:\n%.2000s", body)
	}
}
