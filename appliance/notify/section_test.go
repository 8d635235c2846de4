package notify

import (
	"strings"
	"testing"

	"github.com/patchgate/patchgate/conf/conftest"
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
	tests := []conftest.Case[Section]{
		{Name: "default", Edit: func(s *Section) { *s = DefaultSection() }, Want: ""},
		{Name: "good", Edit: func(*Section) {}, Want: ""},
		{Name: "starttls off on loopback", Edit: func(s *Section) { s.SMTP.Host, s.SMTP.StartTLS = "127.0.0.1", false }, Want: ""},
		{Name: "starttls off elsewhere", Edit: func(s *Section) { s.SMTP.StartTLS = false }, Want: "notify.smtp.starttls: may be off only for a relay on loopback"},
		{Name: "email without relay", Edit: func(s *Section) { s.SMTP.Host = "" }, Want: "notify.smtp.host: must be set"},
		{Name: "bad from", Edit: func(s *Section) { s.SMTP.From = "Patchgate <pg@site.example>" }, Want: "notify.smtp.from: want a plain address"},
		{Name: "password without user", Edit: func(s *Section) { s.SMTP.Password = "x" }, Want: "notify.smtp.username: must be set with a password"},
		{Name: "plain http webhook", Edit: func(s *Section) { s.Webhooks[0].URL = "http://hooks.msp.example/pg?token=abc" }, Want: `notify.webhooks[0].url: want https (http only to a loopback address), got "http://hooks.msp.example/pg"`},
		{Name: "http webhook on loopback", Edit: func(s *Section) { s.Webhooks[0].URL = "http://127.0.0.1:9000/pg" }, Want: ""},
		{Name: "short secret", Edit: func(s *Section) { s.Webhooks[0].Secret = "short" }, Want: "notify.webhooks[0].secret: must be at least 16"},
		{Name: "duplicate webhook", Edit: func(s *Section) { s.Webhooks = append(s.Webhooks, s.Webhooks[0]) }, Want: "notify.webhooks[1].name: \"msp\" is already"},
		{Name: "unknown webhook", Edit: func(s *Section) { s.Recipients[1].Webhook = "siem" }, Want: "notify.recipients[1].webhook: names no webhook"},
		{Name: "both email and webhook", Edit: func(s *Section) { s.Recipients[0].Webhook = "msp" }, Want: "notify.recipients[0]: must set exactly one"},
		{Name: "unknown kind", Edit: func(s *Section) { s.Recipients[0].Events = []string{"backup_fail"} }, Want: "notify.recipients[0].events[0]: want all or one of"},
		{Name: "no kinds", Edit: func(s *Section) { s.Recipients[0].Events = nil }, Want: "notify.recipients[0].events: must list"},
		{Name: "bad address", Edit: func(s *Section) { s.Recipients[0].Email = "it at site" }, Want: "notify.recipients[0].email: want a plain address"},
		{Name: "zero burst", Edit: func(s *Section) { s.Rate.Burst = 0 }, Want: "notify.rate.burst: must be 1-1000"},
		{Name: "zero attempts", Edit: func(s *Section) { s.Retry.Attempts = 0 }, Want: "notify.retry.attempts: must be 1-20"},
		{Name: "zero queue", Edit: func(s *Section) { s.Queue = 0 }, Want: "notify.queue: must be 1-100000"},
	}
	conftest.Run(t, "notify", good, tests, func(t *testing.T, got string) {
		if strings.Contains(got, "abc") || strings.Contains(got, "0123456789abcdef") {
			t.Errorf("Validate: %q shows a secret", got)
		}
	})

}
