package notify

import (
	"errors"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the notify section of patchgate.yaml: where notifications go (an SMTP relay
// and signed webhooks), who gets which kinds, and how often at most.
type Section struct {
	Enabled bool `yaml:"enabled"`
	SMTP    SMTP `yaml:"smtp"`
	// Webhooks are named receivers of signed JSON POSTs that recipients refer to.
	Webhooks []Webhook `yaml:"webhooks"`
	// Recipients each get the kinds of event they list, by email or webhook.
	Recipients []Recipient `yaml:"recipients"`
	// Rate bounds what one recipient gets: a token bucket per recipient.
	Rate Rate `yaml:"rate"`
	// Retry is how a failed send is tried again.
	Retry Retry `yaml:"retry"`
	// Queue is how many events wait for delivery (and how many per recipient); more
	// are dropped and counted, so that Notify never blocks.
	Queue int `yaml:"queue"`
}

// SMTP is the mail relay notifications are sent through.
type SMTP struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// StartTLS is mandatory (the session is refused without it); it may be turned off
	// only for a relay on loopback.
	StartTLS bool          `yaml:"starttls"`
	Username string        `yaml:"username"` // empty: no SMTP authentication
	Password conf.Secret   `yaml:"password"`
	From     string        `yaml:"from"`
	Timeout  conf.Duration `yaml:"timeout"`
}

// Webhook is one receiver of signed JSON POSTs (notify.webhooks[]).
type Webhook struct {
	Name string `yaml:"name"`
	// URL must be https, or http to a loopback address.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of every body (at least 16 characters).
	Secret  conf.Secret   `yaml:"secret"`
	Timeout conf.Duration `yaml:"timeout"`
}

// Recipient is one person or system notified (notify.recipients[]): an email address or
// a webhook by name, and the kinds of event it wants ("all" for every kind).
type Recipient struct {
	Email   string   `yaml:"email"`
	Webhook string   `yaml:"webhook"`
	Events  []string `yaml:"events"`
}

// Rate is a token bucket: Burst messages at once, then one more every Every.
type Rate struct {
	Burst int           `yaml:"burst"`
	Every conf.Duration `yaml:"every"`
}

// Retry is exponential back-off: Attempts tries in all, the first wait Backoff, doubling
// up to MaxBackoff.
type Retry struct {
	Attempts   int           `yaml:"attempts"`
	Backoff    conf.Duration `yaml:"backoff"`
	MaxBackoff conf.Duration `yaml:"max_backoff"`
}

// DefaultSection is the notify section of a config that leaves it out: off.
func DefaultSection() Section {
	return Section{
		SMTP:  SMTP{Port: 587, StartTLS: true, Timeout: conf.Duration(30 * time.Second)},
		Rate:  Rate{Burst: 10, Every: conf.Duration(6 * time.Minute)},
		Retry: Retry{Attempts: 5, Backoff: conf.Duration(30 * time.Second), MaxBackoff: conf.Duration(15 * time.Minute)},
		Queue: 256,
	}
}

var webhookName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Validate checks the notify section. Recipients, webhooks and the relay are checked
// whether or not it is enabled; what a working setup needs (a relay for email
// recipients) only when it is.
func (s Section) Validate(key string, ps *conf.Problems) {
	s.SMTP.validate(key+".smtp", ps)
	names := map[string]bool{}
	for i, w := range s.Webhooks {
		k := conf.Index(key+".webhooks", i)
		switch {
		case !webhookName.MatchString(w.Name):
			ps.Addf(k+".name", "want a name of a-z, 0-9, _ and - starting with a letter, got %q", w.Name)
		case names[w.Name]:
			ps.Addf(k+".name", "%q is already the name of another webhook", w.Name)
		}
		names[w.Name] = true
		if err := checkWebhookURL(w.URL); err != nil {
			ps.Addf(k+".url", "%v, got %q", err, redactURL(w.URL))
		}
		if len(w.Secret.Value()) < 16 {
			ps.Addf(k+".secret", "must be at least 16 characters (it keys the HMAC signature)")
		}
		checkRange(ps, k+".timeout", w.Timeout.D(), 0, 5*time.Minute)
	}
	email := false
	for i, r := range s.Recipients {
		k := conf.Index(key+".recipients", i)
		switch {
		case (r.Email == "") == (r.Webhook == ""):
			ps.Addf(k, "must set exactly one of email and webhook")
		case r.Email != "":
			email = true
			if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email {
				ps.Addf(k+".email", "want a plain address like it@site.example, got %q", r.Email)
			}
		case !names[r.Webhook]:
			ps.Addf(k+".webhook", "names no webhook of %s.webhooks, got %q", key, r.Webhook)
		}
		if len(r.Events) == 0 {
			ps.Addf(k+".events", "must list at least one kind of event (or all)")
		}
		for j, e := range r.Events {
			if e != "all" && !slices.Contains(Kinds, Kind(e)) {
				ps.Addf(conf.Index(k+".events", j), "want all or one of %v, got %q", Kinds, e)
			}
		}
	}
	if s.Enabled && email && s.SMTP.Host == "" {
		ps.Addf(key+".smtp.host", "must be set when a recipient has an email address")
	}
	if s.Rate.Burst < 1 || s.Rate.Burst > 1000 {
		ps.Addf(key+".rate.burst", "must be 1-1000, got %d", s.Rate.Burst)
	}
	checkRange(ps, key+".rate.every", s.Rate.Every.D(), time.Second, 24*time.Hour)
	if s.Retry.Attempts < 1 || s.Retry.Attempts > 20 {
		ps.Addf(key+".retry.attempts", "must be 1-20, got %d", s.Retry.Attempts)
	}
	checkRange(ps, key+".retry.backoff", s.Retry.Backoff.D(), time.Second, time.Hour)
	checkRange(ps, key+".retry.max_backoff", s.Retry.MaxBackoff.D(), s.Retry.Backoff.D(), 24*time.Hour)
	if s.Queue < 1 || s.Queue > 100000 {
		ps.Addf(key+".queue", "must be 1-100000, got %d", s.Queue)
	}
}

func (m SMTP) validate(key string, ps *conf.Problems) {
	if m.Host != "" {
		if m.Port < 1 || m.Port > 65535 {
			ps.Addf(key+".port", "want a port 1-65535, got %d", m.Port)
		}
		if a, err := mail.ParseAddress(m.From); err != nil || a.Address != m.From {
			ps.Addf(key+".from", "want a plain address like patchgate@site.example, got %q", m.From)
		}
	}
	if !m.StartTLS && m.Host != "" && !isLoopback(m.Host) {
		ps.Addf(key+".starttls", "may be off only for a relay on loopback (passwords and messages would cross the network in clear), got host %q", m.Host)
	}
	if m.Password != "" && m.Username == "" {
		ps.Addf(key+".username", "must be set with a password")
	}
	checkRange(ps, key+".timeout", m.Timeout.D(), time.Second, 5*time.Minute)
}

// checkWebhookURL wants https, or http to loopback.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return errors.New("want an absolute URL like https://hooks.example/patchgate, without user info")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return errors.New("want https (http only to a loopback address)")
	}
	return nil
}

// redactURL keeps a URL's scheme, host and path: its query may carry a token.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkRange(ps *conf.Problems, key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		ps.Addf(key, "must be between %v and %v, got %v", lo, hi, d)
	}
}
