package vendorhost

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

func TestSectionValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Section
		want string
	}{
		{"default", DefaultSection(), ""},
		{"listeners", Section{Listen: ":80", HTTPSListen: ":443", AskedMax: 10, OutcomeGrace: conf.Duration(time.Hour)}, ""},
		{"grace too short", Section{AskedMax: 10, OutcomeGrace: conf.Duration(time.Second)}, "vendorhost.outcome_grace: must be at least 1m"},
		{"bad listen", Section{Listen: "eighty", AskedMax: 10}, "vendorhost.listen: want host:port"},
		{"same twice", Section{Listen: ":80", HTTPSListen: ":80", AskedMax: 10}, "vendorhost.https_listen: must differ"},
		{"asked_max zero", Section{}, "vendorhost.asked_max: must be 1-100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps conf.Problems
			tc.s.Validate("vendorhost", &ps)
			got := ""
			for _, p := range ps {
				got += p.String() + "\n"
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

// The tuf section checks vendor_hosts with the same host name rules the server uses.
func TestVendorHostsConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		vh   tuf.VendorHost
		want string
	}{
		{"good", tuf.VendorHost{Host: "Updates.Vendor.Example.", PathPrefix: "/fw/", TargetPrefix: "printers/"}, ""},
		{"url for a host", tuf.VendorHost{Host: "http://updates.vendor.example/"}, "vendor_hosts[0].host"},
		{"port", tuf.VendorHost{Host: "updates.vendor.example:80"}, "vendor_hosts[0].host"},
		{"path prefix without slash", tuf.VendorHost{Host: "a.example", PathPrefix: "fw"}, "vendor_hosts[0].path_prefix"},
		{"absolute target prefix", tuf.VendorHost{Host: "a.example", TargetPrefix: "/fw/"}, "vendor_hosts[0].target_prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := tuf.DefaultSection()
			sec.Demo = tuf.Demo{Enabled: true, Name: "demo", VendorHosts: []tuf.VendorHost{tc.vh}}
			var ps conf.Problems
			sec.Validate("tuf", &ps)
			got := ""
			for _, p := range ps {
				got += p.String() + "\n"
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, "tuf.demo."+tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
}
