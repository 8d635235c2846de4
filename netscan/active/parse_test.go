package active

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/netscan"
)

func TestTitle(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "<title>Printer</title>", "Printer"},
		{"attrs and case", "<TITLE lang=en>\n  Zebra\tZT410 </title>", "Zebra ZT410"},
		{"entities", "<title>A &amp; B</title>", "A & B"},
		{"none", "<html></html>", ""},
		{"unterminated", "<title>x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Title([]byte(tt.in)); got != tt.want {
				t.Errorf("Title(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDescription(t *testing.T) {
	const desc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:Printer:1</deviceType><friendlyName>Label Printer</friendlyName>
<manufacturer>Zebra Technologies</manufacturer><modelName>ZT410</modelName><modelNumber>ZT41042</modelNumber>
<serialNumber>18J123456789</serialNumber><UDN>uuid:4A2B0C1D-0000-1000-8000-00074D102030</UDN></device></root>`
	var o netscan.Observation
	if err := ParseDescription([]byte(desc), &o); err != nil {
		t.Fatal(err)
	}
	netscan.SortFacts(o.Facts)
	want := []netscan.Fact{
		{Key: netscan.KeyUPnPDeviceType, Value: "urn:schemas-upnp-org:device:Printer:1"},
		{Key: netscan.KeyUPnPFriendlyName, Value: "Label Printer"},
		{Key: netscan.KeyUPnPManufacturer, Value: "Zebra Technologies"},
		{Key: netscan.KeyUPnPModelName, Value: "ZT410"},
		{Key: netscan.KeyUPnPModelNumber, Value: "ZT41042"},
		{Key: netscan.KeyUPnPSerial, Value: "18J123456789"},
		{Key: netscan.KeyUPnPUDN, Value: "uuid:4a2b0c1d-0000-1000-8000-00074d102030"},
	}
	if diff := cmp.Diff(want, o.Facts); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
}

func TestIPPRoundTrip(t *testing.T) {
	req := IPPRequest("ipp://192.0.2.10:631/ipp/print", 7)
	// A request parses with the response parser too: same framing.
	_, attrs, err := ParseIPPResponse(req)
	if err != nil {
		t.Fatal(err)
	}
	if attrs["printer-uri"] != "ipp://192.0.2.10:631/ipp/print" || attrs["requested-attributes"] != "printer-make-and-model" {
		t.Errorf("request attributes = %v", attrs)
	}
	status, attrs, err := ParseIPPResponse(ippResponse("printer-make-and-model", "Zebra ZT410", "printer-device-id", "MFG:Zebra;MDL:ZT410;"))
	if err != nil || status != 0 || attrs["printer-make-and-model"] != "Zebra ZT410" {
		t.Errorf("ParseIPPResponse = %#x %v %v", status, attrs, err)
	}
	if mfg, mdl := DeviceID(attrs["printer-device-id"]); mfg != "Zebra" || mdl != "ZT410" {
		t.Errorf("DeviceID = %q %q", mfg, mdl)
	}
}

// FuzzParseIPPResponse: never panics; a nil error means a map was returned.
func FuzzParseIPPResponse(f *testing.F) {
	f.Add(ippResponse("printer-make-and-model", "Zebra ZT410"))
	f.Add(IPPRequest("ipp://h/", 1))
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 1, 0x01, 0x41, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, attrs, err := ParseIPPResponse(b)
		if err == nil && attrs == nil {
			t.Errorf("nil attributes without an error")
		}
	})
}

// FuzzParseDescription: never panics; added facts are clean.
func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(`<root><device><UDN>uuid:x</UDN></device></root>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o netscan.Observation
		ParseDescription(b, &o)
		for _, fa := range o.Facts {
			if netscan.CleanValue(fa.Value) != fa.Value {
				t.Errorf("unclean fact %q", fa)
			}
		}
	})
}

func FuzzTitle(f *testing.F) {
	f.Add([]byte("<title>x</title>"))
	f.Fuzz(func(t *testing.T, b []byte) { Title(b) })
}
