package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/conf"
)

func TestSectionValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Section)
		want string // "" = valid; else a substring of the one problem
	}{
		{"default: off and valid", func(*Section) {}, ""},
		{"syslog target", func(s *Section) { s.Syslog.Address = "siem.example:6514" }, ""},
		{"https target", func(s *Section) { s.HTTPS.URL, s.HTTPS.Token = "https://siem.example/in", "t" }, ""},
		{"syslog without port", func(s *Section) { s.Syslog.Address = "siem.example" }, "siem.syslog.address: want host:port"},
		{"unknown facility", func(s *Section) { s.Syslog.Facility = "kern" }, "siem.syslog.facility"},
		{"plain http", func(s *Section) { s.HTTPS.URL, s.HTTPS.Token = "http://siem.example/in", "t" }, "siem.https.url: want an https://"},
		{"https without token", func(s *Section) { s.HTTPS.URL = "https://siem.example/in" }, "siem.https.token"},
		{"zero rate", func(s *Section) { s.Rate = 0 }, "siem.rate"},
		{"huge batch", func(s *Section) { s.Batch = 1 << 20 }, "siem.batch"},
		{"retry too short", func(s *Section) { s.Retry = conf.Duration(time.Millisecond) }, "siem.retry"},
		{"silent_after too short", func(s *Section) { s.SilentAfter = conf.Duration(time.Minute) }, "siem.silent_after"},
		{"silent_after off", func(s *Section) { s.SilentAfter = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSection()
			tc.edit(&s)
			var ps conf.Problems
			s.Validate("siem", &ps)
			switch {
			case tc.want == "" && len(ps) > 0:
				t.Errorf("Validate = %v, want no problem", ps)
			case tc.want != "" && (len(ps) != 1 || !strings.Contains(ps[0].String(), tc.want)):
				t.Errorf("Validate = %v, want one problem containing %q", ps, tc.want)
			}
		})
	}
	if got := (HTTPS{Token: "secret-1"}).Token.String(); strings.Contains(got, "secret-1") {
		t.Errorf("the token prints as %q", got)
	}
}
