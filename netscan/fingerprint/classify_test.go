package fingerprint

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/netscan"
)

func facts(kv ...string) []netscan.Fact {
	var fs []netscan.Fact
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, netscan.Fact{Key: netscan.Key(kv[i]), Value: kv[i+1]})
	}
	return fs
}

func TestClassify(t *testing.T) {
	c := New(nil)
	tests := []struct {
		name                          string
		mac                           string
		facts                         []netscan.Fact
		wantType                      Type
		wantVendor, wantModel, wantFW string
		wantOS                        string
		wantRule                      string // a rule that must be in the evidence
		minConfidence                 float64
	}{
		{
			name: "zebra label printer by snmp",
			mac:  "00:07:4d:10:20:30",
			facts: facts("snmp.sys_object_id", "1.3.6.1.4.1.10642.1.1", "snmp.sys_descr", "ZTC ZT410-300dpi ZPL V75.20.01Z",
				"tcp.open", "9100", "tcp.open", "631", "ipp.make_and_model", "Zebra ZT410", "ipp.firmware", "V75.20.01Z"),
			wantType: TypeLabelPrinter, wantVendor: "Zebra Technologies", wantModel: "ZT410", wantFW: "V75.20.01Z",
			wantRule: "zebra-snmp-oid", minConfidence: 0.95,
		},
		{
			name:     "office printer by mdns",
			mac:      "00:80:77:01:02:03",
			facts:    facts("mdns.service", "_ipp._tcp", "mdns.txt.ty", "Brother MFC-L2750DW series", "mdns.txt.usb_mfg", "Brother", "mdns.txt.usb_mdl", "MFC-L2750DW series"),
			wantType: TypePrinter, wantVendor: "Brother", wantModel: "MFC-L2750DW series",
			wantRule: "mdns-printer-service", minConfidence: 0.8,
		},
		{
			name:     "zebra handheld by dhcp",
			mac:      "00:a0:f8:44:55:66",
			facts:    facts("hostname", "TC52-PHARM-01", "dhcp.vendor_class", "android-dhcp-11", "dhcp.params", "1,3,6,15,26,28,51,58,59,43"),
			wantType: TypeMobileHandheld, wantVendor: "Zebra Technologies", wantOS: "Android 11",
			wantRule: "rugged-handheld-android", minConfidence: 0.9,
		},
		{
			name:     "phone with randomised mac",
			mac:      "7a:11:22:33:44:55",
			facts:    facts("dhcp.vendor_class", "android-dhcp-14"),
			wantType: TypeMobileHandheld, wantOS: "Android 14", wantRule: "randomised-mac", minConfidence: 0.7,
		},
		{
			name:     "switch by lldp",
			mac:      "00:1b:54:01:02:03",
			facts:    facts("lldp.capabilities", "bridge,router", "lldp.sys_descr", "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8"),
			wantType: TypeNetwork, wantOS: "Cisco IOS 15.2(7)E8", wantRule: "lldp-bridge-router", minConfidence: 0.9,
		},
		{
			name:     "windows workstation",
			facts:    facts("netbios.name", "RX-WS-01", "dhcp.vendor_class", "MSFT 5.0", "tcp.open", "3389", "tcp.open", "445"),
			wantType: TypeWorkstation, wantOS: "Windows", wantRule: "windows-dhcp", minConfidence: 0.8,
		},
		{
			name:     "dispensing robot by hostname",
			facts:    facts("hostname", "rowa-vmax-1", "tcp.open", "443"),
			wantType: TypePharmacy, wantRule: "pharmacy-strings", minConfidence: 0.7,
		},
		{
			name:     "payment terminal by oui",
			mac:      "00:0b:4f:01:02:03",
			facts:    nil,
			wantType: TypePOS, wantRule: "pos-vendor", minConfidence: 0.8,
		},
		{
			name:     "camera by mdns",
			facts:    facts("mdns.service", "_axis-video._tcp"),
			wantType: TypeCamera, wantRule: "camera-mdns", minConfidence: 0.8,
		},
		{
			name:     "nothing known",
			mac:      "00:00:00:00:00:00",
			wantType: TypeUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mac netscan.MAC
			if tt.mac != "" {
				var err error
				if mac, err = netscan.ParseMAC(tt.mac); err != nil {
					t.Fatal(err)
				}
			}
			r := c.Classify(mac, tt.facts)
			if r.Type != tt.wantType {
				t.Fatalf("Classify type = %s (%.2f, scores %v), want %s", r.Type, r.Confidence, r.Scores, tt.wantType)
			}
			if r.Confidence < tt.minConfidence {
				t.Errorf("confidence = %.3f, want >= %.2f", r.Confidence, tt.minConfidence)
			}
			for _, a := range []struct{ what, got, want string }{
				{"vendor", r.Vendor.Value, tt.wantVendor}, {"model", r.Model.Value, tt.wantModel},
				{"firmware", r.Firmware.Value, tt.wantFW}, {"os", r.OS.Value, tt.wantOS},
			} {
				if a.want != "" && a.got != a.want {
					t.Errorf("%s = %q, want %q", a.what, a.got, a.want)
				}
			}
			if tt.wantRule != "" {
				found := false
				for _, e := range r.Evidence {
					found = found || e.Rule == tt.wantRule
					if len(e.Facts) == 0 {
						t.Errorf("evidence %s names no facts", e.Rule)
					}
				}
				if !found {
					t.Errorf("evidence %v lacks rule %s", r.Evidence, tt.wantRule)
				}
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"no rules"}},
		{"unknown field", "rules:\n  - name: a\n    typo: 1\n", []string{"typo"}},
		{"bad rule", `rules:
  - name: a
    type: toaster
    confidence: 2
    when: {hostname: {regex: "("}}
  - name: a
    type: printer
    confidence: 0.5
    when: {hostname: {prefix: x, contains: y}}
    set: {colour: red}
`, []string{"rules.yaml:2: rule \"a\": unknown type \"toaster\"", "rules.yaml:2: rule \"a\": confidence", "hostname: error parsing regexp",
			"rules.yaml:6: rule \"a\": name already used at line 2", "want exactly one", "cannot set \"colour\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules("rules.yaml", strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseRules(%q) = nil error", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseRules error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDefaultRulesParse(t *testing.T) {
	r := DefaultRules()
	if len(r.rules) < 40 {
		t.Errorf("DefaultRules has %d rules, want the whole file", len(r.rules))
	}
}

// FuzzParseRules: any input either parses into rules that classify without
// panicking, or gives an error; never a panic.
func FuzzParseRules(f *testing.F) {
	f.Add(string(defaultRules))
	f.Add("rules:\n  - name: a\n    type: printer\n    confidence: 0.5\n    when: {hostname: {regex: 'x(y)'}}\n    set: {model: {from: hostname, regex: '(.*)', format: '$1$2'}}\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRules("fuzz.yaml", strings.NewReader(in))
		if err != nil {
			return
		}
		New(r).Classify(netscan.MAC{0, 7, 0x4d, 1, 2, 3}, facts("hostname", "xy", "tcp.open", "9100"))
	})
}
