package forward

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/patchgate/patchgate/appliance/audit"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func TestSyslog5424(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rec      audit.Record
		facility int
		want     string
	}{
		{"plain record, local0 notice", audit.Record{Seq: 7, Time: t0, Entry: audit.Entry{Actor: "anna", Action: "rollout.approve", Object: "rollout/3"}, Hash: "ab"},
			16, `<133>1 2026-03-04T05:06:07.123456Z gw1 patchgate - rollout.approve [audit@32473 seq="7" action="rollout.approve" actor="anna" object="rollout/3" hash="ab"] ` + "\xEF\xBB\xBF" + `anna rollout.approve rollout/3`},
		{"failed deployment is a warning alert, auth facility", audit.Record{Seq: 8, Time: t0, Entry: audit.Entry{Actor: "system", Action: "deployment.failed",
			Details: map[string]string{"asset": "robot-1", "exit_code": "3"}}},
			4, `<36>1 2026-03-04T05:06:07.123456Z gw1 patchgate - deployment.failed [audit@32473 seq="8" action="deployment.failed" alert="deployment_failed" actor="system"][details@32473 asset="robot-1" exit_code="3"] ` + "\xEF\xBB\xBF" + `system deployment.failed`},
		{"escaping and long msgid", audit.Record{Seq: 9, Time: t0, Entry: audit.Entry{Actor: `a"b`, Action: "cache.integrity.upstream_rejected",
			Details: map[string]string{"de tail": `x]y\z`}}},
			16, `<132>1 2026-03-04T05:06:07.123456Z gw1 patchgate - cache.integrity.upstream_rejecte [audit@32473 seq="9" action="cache.integrity.upstream_rejected" actor="a\"b"][details@32473 de_tail="x\]y\\z"] ` + "\xEF\xBB\xBF" + `a"b cache.integrity.upstream_rejected`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Syslog5424(tc.rec, tc.facility, "gw1")); got != tc.want {
				t.Errorf("Syslog5424 =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestNoEPHI: a device flagged as holding ePHI is named by its asset name and address
// only. The trail holds the names of changed fields, never their values, and a detail
// key that looks like patient data is dropped even if one reached the trail.
func TestNoEPHI(t *testing.T) {
	secret := []string{"Jane Doe", "MRN 0042", "1961-02-03", "dispensing for ward"}
	recs := []audit.Record{
		{Seq: 1, Time: t0, Entry: audit.Entry{Actor: "anna", Action: "inventory.asset_updated", Object: "asset/a1",
			Before: audit.Digest(`{"ephi":"yes","notes":"dispensing for ward"}`), After: audit.Digest("x"),
			Details: map[string]string{"asset": "robot-1", "fields": "ephi,notes,owner"}}},
		{Seq: 2, Time: t0, Entry: audit.Entry{Actor: "system:inventory", Action: "inventory.new_device", Object: "asset/a1", Source: "10.20.0.5",
			Details: map[string]string{"asset": "robot-1", "patient_name": "Jane Doe", "MRN": "MRN 0042", "dob": "1961-02-03"}}},
	}
	out := string(JSON(recs, "gw1"))
	for _, r := range recs {
		out += string(Syslog5424(r, 16, "gw1"))
	}
	for _, s := range secret {
		if strings.Contains(out, s) {
			t.Errorf("forwarded messages contain %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"robot-1", "10.20.0.5", "asset/a1"} {
		if !strings.Contains(out, s) {
			t.Errorf("forwarded messages lack the asset's name or address %q", s)
		}
	}
}

func TestJSON(t *testing.T) {
	recs := []audit.Record{{Seq: 3, Time: t0, Entry: audit.Entry{Actor: "system", Action: "alert.device_silent", Object: "agent/ag-1",
		Details: map[string]string{"hostname": "pos-2"}}, Hash: "cd"}}
	var got []Message
	if err := json.Unmarshal(JSON(recs, "gw1"), &got); err != nil {
		t.Fatal(err)
	}
	want := Message{Seq: 3, Time: t0, Host: "gw1", App: "patchgate", Severity: "warning", Alert: "device_silent",
		Action: "alert.device_silent", Actor: "system", Object: "agent/ag-1", Details: map[string]string{"hostname": "pos-2"}, Hash: "cd"}
	if len(got) != 1 || got[0].Seq != want.Seq || !got[0].Time.Equal(want.Time) || got[0].Alert != want.Alert ||
		got[0].Severity != want.Severity || got[0].Details["hostname"] != "pos-2" || got[0].Host != "gw1" {
		t.Errorf("JSON = %+v, want %+v", got, want)
	}
}

// FuzzSyslog5424: whatever a record holds, the message is valid UTF-8 with the header
// fields RFC 5424 bounds (HOSTNAME 255, MSGID 32, no spaces in them) and never panics.
func FuzzSyslog5424(f *testing.F) {
	f.Add("anna", "rollout.approve", "rollout/3", "remark", `a"b]c\d`)
	f.Add("", "", "", "", "")
	f.Add("x y", "a b=c]\"", "\xff", "k=\"]", "\n")
	f.Fuzz(func(t *testing.T, actor, action, object, key, value string) {
		r := audit.Record{Seq: 1, Time: t0, Entry: audit.Entry{Actor: actor, Action: action, Object: object,
			Details: map[string]string{key: value}}}
		m := string(Syslog5424(r, 16, "gw 1"))
		fields := strings.SplitN(m, " ", 7)
		if len(fields) < 7 || len(fields[2]) > 255 || len(fields[5]) > 32 || fields[3] != "patchgate" {
			t.Fatalf("bad header in %q", m)
		}
		if !utf8.ValidString(m) {
			t.Fatalf("not UTF-8: %q", m)
		}
		if !strings.HasPrefix(fields[6], "[audit@32473 seq=\"1\"") {
			t.Fatalf("no structured data in %q", m)
		}
	})
}
