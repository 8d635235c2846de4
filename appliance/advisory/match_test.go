package advisory

import (
	"strings"
	"testing"
)

func TestMatchProduct(t *testing.T) {
	printer := Asset{Vendor: "Zebra Technologies", Model: "ZT410", Firmware: "V75.20.01Z"}
	ws := Asset{OSName: "Windows 11 Pro", OSBuild: "22631.4037"}
	deb := Asset{Ecosystem: "Debian:12", Packages: []Package{{"openssl", "3.0.11-1~deb12u2"}}}
	tests := []struct {
		name          string
		a             Asset
		p             Product
		ok, ambiguous bool
		evidence      string
	}{
		{"firmware listed", printer, Product{Vendor: "Zebra", Model: "ZT410", Versions: []string{"V75.20.01Z"}}, true, false, "version listed as affected"},
		{"firmware below the fixed version", printer, Product{Vendor: "Zebra", Model: "ZT410", Fixed: "V75.20.02Z"}, true, false, "below the fixed version"},
		{"firmware at the fixed version", Asset{Vendor: "Zebra", Model: "ZT410", Firmware: "V75.20.02Z"}, Product{Vendor: "Zebra", Model: "ZT410", Versions: []string{"V75.20.01Z"}, Fixed: "V75.20.02Z"}, false, false, ""},
		{"another vendor's model of the same name", printer, Product{Vendor: "Honeywell", Model: "ZT410", Versions: []string{"V75.20.01Z"}}, false, false, ""},
		{"by CPE", printer, Product{CPE: "cpe:2.3:h:zebra:zt410:v75.20.01z:*:*:*:*:*:*:*"}, true, false, "cpe"},
		{"by model number, vendor unknown", printer, Product{ModelNumbers: []string{"ZT-410"}, Versions: []string{"V75.20.01Z"}}, true, true, "vendor not known"},
		{"firmware in a generic range", printer, Product{Vendor: "Zebra", Model: "ZT410", VersionRange: "vers:generic/>=V75.20.00Z|<V75.20.02Z"}, true, false, "V75.20.01Z is in the affected range vers:generic/>=V75.20.00Z|<V75.20.02Z"},
		{"firmware above a generic range", printer, Product{Vendor: "Zebra", Model: "ZT410", VersionRange: "vers:generic/<V75.20.01Z"}, false, false, ""},
		{"firmware range of an unknown scheme", printer, Product{Vendor: "Zebra", Model: "ZT410", VersionRange: "vers:zebra/<75.21"}, true, true, `not evaluated: vers: versioning scheme not supported: "zebra"`},
		{"firmware range malformed", printer, Product{Vendor: "Zebra", Model: "ZT410", VersionRange: "<75.21"}, true, true, "not evaluated: vers: invalid"},
		{"firmware not semver under a semver range", printer, Product{Vendor: "Zebra", Model: "ZT410", VersionRange: "vers:semver/<2.0.0"}, true, true, "is not a semantic version"},
		{"purl with a deb range: affected", deb, Product{PURL: "pkg:deb/debian/openssl", VersionRange: "vers:deb/>=3.0.0|<3.0.15-1~deb12u1"}, true, false, "is in the affected range vers:deb/"},
		{"purl with a deb range: fixed version installed", deb, Product{PURL: "pkg:deb/debian/openssl", VersionRange: "vers:deb/>=3.0.0|<3.0.11-1~deb12u2"}, false, false, ""},
		{"purl with a range, unknown scheme: ambiguous", deb, Product{PURL: "pkg:deb/debian/openssl", VersionRange: "vers:conan/<4"}, true, true, `scheme not supported: "conan"`},
		{"CSAF branch with purl and range", deb, Product{Vendor: "Debian", Model: "openssl", PURL: "pkg:deb/debian/openssl", VersionRange: "vers:deb/<3.0.15"}, true, false, "in the affected range"},
		{"npm package in a semver range", Asset{Ecosystem: "npm", Packages: []Package{{"lodash", "4.17.20"}}}, Product{PURL: "pkg:npm/lodash", VersionRange: "vers:npm/<4.17.21"}, true, false, "4.17.20 is in"},
		{"npm package outside a semver range", Asset{Ecosystem: "npm", Packages: []Package{{"lodash", "4.17.21"}}}, Product{PURL: "pkg:npm/lodash", VersionRange: "vers:npm/<4.17.21"}, false, false, ""},
		{"no version named", printer, Product{Vendor: "Zebra", Model: "ZT410"}, true, true, "names no version"},
		{"OS build listed", ws, Product{Model: "Windows 11 Pro", Versions: []string{"22631.4037"}}, true, false, "os build 22631.4037"},
		{"OS build not listed", ws, Product{Model: "Windows 11 Pro", Versions: []string{"22631.9999"}}, false, false, ""},
		{"purl from CSAF", deb, Product{PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64"}, true, false, "listed as affected"},
		{"OSV for another release", deb, Product{Ecosystem: "Debian:11", Package: "openssl", Ranges: []Range{{Introduced: "0"}}}, false, false, ""},
		{"OSV without release suffix", deb, Product{Ecosystem: "Debian", Package: "openssl", Ranges: []Range{{Introduced: "0", Fixed: "3.0.15"}}}, true, false, "affected range"},
		{"agent without ecosystem", Asset{Packages: deb.Packages}, Product{Ecosystem: "Debian:12", Package: "openssl", Versions: []string{"3.0.11-1~deb12u2"}}, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, amb, ev, _ := matchProduct(tt.a, tt.p)
			if ok != tt.ok || amb != tt.ambiguous || !strings.Contains(ev, tt.evidence) {
				t.Errorf("matchProduct = %v, ambiguous %v, %q; want %v, %v, containing %q", ok, amb, ev, tt.ok, tt.ambiguous, tt.evidence)
			}
		})
	}
}
