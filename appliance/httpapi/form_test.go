package httpapi

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

type formDur int64

func (d *formDur) UnmarshalJSON(b []byte) error {
	v, err := time.ParseDuration(strings.Trim(string(b), `"`))
	*d = formDur(v)
	return err
}

type formRow struct {
	Ring string  `json:"ring"`
	Pct  float64 `json:"pct"`
	Soak formDur `json:"soak"`
	Pre  bool    `json:"prestage"`
}

type formSel struct {
	Tags []string `json:"tags"`
}

type formThing struct {
	Name  string    `json:"name"`
	Order int       `json:"order"`
	Sel   formSel   `json:"selector"`
	Rows  []formRow `json:"stages"`
	At    time.Time `json:"at"`
	Flag  bool      `json:"flag"`
	//lint:ignore U1000 an unexported field no form may reach
	skip string
}

func TestFormValues(t *testing.T) {
	tests := []struct {
		name    string
		form    string
		want    func(formThing) bool
		wantErr string
	}{
		{"fields", "name=a&order=3&flag=on&at=2026-04-30T22:00&return=/x", func(v formThing) bool {
			return v.Name == "a" && v.Order == 3 && v.Flag && v.At.Equal(time.Date(2026, 4, 30, 22, 0, 0, 0, time.UTC))
		}, ""},
		{"nested and lists", "selector.tags=a,+b&selector.tags=c", func(v formThing) bool { return strings.Join(v.Sel.Tags, "|") == "a|b|c" }, ""},
		{"rows, blank ones dropped", "stages.0.ring=pilot&stages.0.pct=95&stages.0.soak=24h&stages.1.ring=&stages.1.pct=&stages.2.ring=core&stages.2.prestage=on",
			func(v formThing) bool {
				return len(v.Rows) == 2 && v.Rows[0].Ring == "pilot" && v.Rows[0].Pct == 95 && v.Rows[0].Soak == formDur(24*time.Hour) && v.Rows[1].Ring == "core" && v.Rows[1].Pre
			}, ""},
		{"unknown key", "name=a&colour=red", nil, `unknown field "colour"`},
		{"bad number names the field", "order=many", nil, "order: want a whole number"},
		{"bad row number names the field", "stages.0.pct=lots", nil, "stages.0.pct: want a number"},
		{"bad time names the field", "at=tomorrow", nil, "at: want a date"},
		{"bad duration", "stages.0.soak=forever", nil, "form:"},
		{"bad bool", "flag=maybe", nil, "flag: want a checkbox"},
		{"unexported field is unknown", "skip=x", nil, `unknown field "skip"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals, err := url.ParseQuery(tt.form)
			if err != nil {
				t.Fatal(err)
			}
			var v formThing
			err = FormValues(vals, &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(v) {
				t.Errorf("decoded %+v", v)
			}
		})
	}
}

func FuzzFormValues(f *testing.F) {
	f.Add("name=a&order=3&stages.0.ring=x&stages.0.pct=1e3&selector.tags=a,b&at=2026-01-01")
	f.Add("stages.99.soak=1h&flag=on")
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		var v formThing
		_ = FormValues(vals, &v) // must not panic
	})
}
