package inventory

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/netscan"
)

func TestAPI(t *testing.T) {
	f := newFixture(t)
	f.observe(t,
		obs(netscan.SourceSNMP, "00:07:4d:10:20:30", "192.0.2.10", "snmp.sys_object_id", "1.3.6.1.4.1.10642.1.1", "hostname", "=HYPERLINK(\"x\")"),
		obs(netscan.SourceDHCP, "00:a0:f8:44:55:66", "192.0.2.20", "dhcp.vendor_class", "android-dhcp-11", "hostname", "TC52"),
	)
	mux := http.NewServeMux()
	API{Inv: f.inv, Actor: func(*http.Request) string { return "alice" }}.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, ct, body string) (int, string) {
		t.Helper()
		return httpapitest.Fetch(t, method, srv.URL+path, strings.NewReader(body), "Content-Type", ct)
	}
	tests := []struct {
		name, method, path, ct, body string
		code                         int
		want                         string
	}{
		{"list", "GET", "/api/v1/assets", "", "", 200, `"count": 2`},
		{"filter type", "GET", "/api/v1/assets?type=mobile_handheld", "", "", 200, `"count": 1`},
		{"filter none", "GET", "/api/v1/assets?segment=clinical", "", "", 200, `"count": 0`},
		{"get", "GET", "/api/v1/assets/mac:00:a0:f8:44:55:66", "", "", 200, `"android-dhcp-11"`},
		{"get unknown", "GET", "/api/v1/assets/mac:nope", "", "", 404, "no such asset"},
		{"update json", "POST", "/api/v1/assets/mac:00:a0:f8:44:55:66", "application/json", `{"owner":"Front desk","ring":"pilot"}`, 200, `"owner": "Front desk"`},
		{"update form", "POST", "/api/v1/assets/mac:00:a0:f8:44:55:66", "application/x-www-form-urlencoded", url.Values{"location": {"counter"}, "tags": {"pilot, scanner"}}.Encode(), 200, `"location": "counter"`},
		{"update unknown field", "POST", "/api/v1/assets/mac:00:a0:f8:44:55:66", "application/json", `{"colour":"red"}`, 400, "unknown field"},
		{"update invalid", "POST", "/api/v1/assets/mac:00:a0:f8:44:55:66", "application/json", `{"criticality":"extreme"}`, 400, "criticality"},
		{"update wrong type", "POST", "/api/v1/assets/mac:00:a0:f8:44:55:66", "text/plain", `owner=x`, 415, "want application/json"},
		{"scans without discovery", "POST", "/api/v1/scans", "", "", 503, "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.path, tt.ct, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.want)
			}
		})
	}
	// The admin change was an event, and the tags of the form were set.
	if k := f.sink.kinds(); k[len(k)-1] != EventAssetUpdated+" mac:00:a0:f8:44:55:66" {
		t.Errorf("events = %v, want an update last", k)
	}
	a, _ := f.inv.Get(t.Context(), "mac:00:a0:f8:44:55:66")
	if strings.Join(a.Tags, ",") != "pilot,scanner" || a.Owner != "Front desk" {
		t.Errorf("asset after updates: tags %v owner %q", a.Tags, a.Owner)
	}

	code, body := do("GET", "/api/v1/assets.csv", "", "")
	if code != 200 {
		t.Fatalf("csv = %d", code)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv = %v, %v", recs, err)
	}
	for _, r := range recs[1:] {
		for _, c := range r {
			if strings.HasPrefix(c, "=") {
				t.Errorf("csv cell %q could run as a formula", c)
			}
		}
	}
	var exp Export
	if code, body := do("GET", "/api/v1/assets?new=1", "", ""); code != 200 || json.Unmarshal([]byte(body), &exp) != nil || exp.Count != 2 {
		t.Errorf("new=1: %d %s", code, body)
	}
}

// FuzzAttributes: any JSON body either updates the asset with valid attributes or is
// refused; never a panic, never an invalid stored value.
func FuzzAttributes(f *testing.F) {
	f.Add([]byte(`{"owner":"a","tags":["x"],"criticality":"high","eol_date":"2030-01-01"}`))
	f.Add([]byte(`{"type":"printer","ring":"core"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Attributes
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if dec.Decode(&a) != nil {
			return
		}
		var s adminAttrs
		if _, err := s.apply(a); err != nil {
			return
		}
		for _, v := range []string{s.Name, s.Owner, s.Notes, s.Model} {
			if len(v) > maxAttrLen || netscan.CleanValue(v) != v {
				t.Errorf("stored %q", v)
			}
		}
	})
}
