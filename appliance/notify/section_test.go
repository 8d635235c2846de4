package notify

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/conf"
)

func TestSectionValidate(t *testing.T) {
	good := func() Section {
		s := DefaultSection()
		s.Enabled = true
		s.SMTP.Host, s.SMTP.From = "smtp.site.example", "patchgate@site.example"
		s.Webhooks = []Webhook{{Name: "msp", URL: "https://hooks.msp.example/pg", Secret: "0123456789abcdef"}}
		s.Recipients = []Recipient{{Email: "it@site.example", Events: []string{"approval_waiting", "backup_failed"}},
			{Webhook: "msp", Events: []string{"all"}}}
		return s
	}
	tests := []struct {
		name   string
		change func(*Section)
		want   string // a problem's text, "" for none
	}{
		{"default", func(s *Section) { *s = DefaultSection() }, ""},
		{"good", func(*Section) {}, ""},
		{"starttls off on loopback", func(s *Section) { s.SMTP.Host, s.SMTP.StartTLS = "127.0.0.1", false }, ""},
		{"starttls off elsewhere", func(s *Section) { s.SMTP.StartTLS = false }, "notify.smtp.starttls: may be off only for a relay on loopback"},
		{"email without relay", func(s *Section) { s.SMTP.Host = "" }, "notify.smtp.host: must be set"},
		{"bad from", func(s *Section) { s.SMTP.From = "Patchgate <pg@site.example>" }, "notify.smtp.from: want a plain address"},
		{"password without user", func(s *Section) { s.SMTP.Password = "x" }, "notify.smtp.username: must be set with a password"},
		{"plain http webhook", func(s *Section) { s.Webhooks[0].URL = "http://hooks.msp.example/pg?token=abc" }, `notify.webhooks[0].url: want https (http only to a loopback address), got "http://hooks.msp.example/pg"`},
		{"http webhook on loopback", func(s *Section) { s.Webhooks[0].URL = "http://127.0.0.1:9000/pg" }, ""},
		{"short secret", func(s *Section) { s.Webhooks[0].Secret = "short" }, "notify.webhooks[0].secret: must be at least 16"},
		{"duplicate webhook", func(s *Section) { s.Webhooks = append(s.Webhooks, s.Webhooks[0]) }, "notify.webhooks[1].name: \"msp\" is already"},
		{"unknown webhook", func(s *Section) { s.Recipients[1].Webhook = "siem" }, "notify.recipients[1].webhook: names no webhook"},
		{"both email and webhook", func(s *Section) { s.Recipients[0].Webhook = "msp" }, "notify.recipients[0]: must set exactly one"},
		{"unknown kind", func(s *Section) { s.Recipients[0].Events = []string{"backup_fail"} }, "notify.recipients[0].events[0]: want all or one of"},
		{"no kinds", func(s *Section) { s.Recipients[0].Events = nil }, "notify.recipients[0].events: must list"},
		{"bad address", func(s *Section) { s.Recipients[0].Email = "it at site" }, "notify.recipients[0].email: want a plain address"},
		{"zero burst", func(s *Section) { s.Rate.Burst = 0 }, "notify.rate.burst: must be 1-1000"},
		{"zero attempts", func(s *Section) { s.Retry.Attempts = 0 }, "notify.retry.attempts: must be 1-20"},
		{"zero queue", func(s *Section) { s.Queue = 0 }, "notify.queue: must be 1-100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.change(&s)
			var ps conf.Problems
			s.Validate("notify", &ps)
			got := (&conf.Error{Problems: ps}).Error()
			switch {
			case tt.want == "" && len(ps) > 0:
				t.Errorf("Validate: %s, want no problem", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("Validate: %q, want %q", got, tt.want)
			case strings.Contains(got, "abc") || strings.Contains(got, "0123456789abcdef"):
				t.Errorf("Validate: %q shows a secret", got)
			}
		})
	}
}
