package forward

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the siem section of patchgate.yaml: where the audit trail is forwarded.
// With neither target set nothing is forwarded. Each target set gets its own forwarder
// and its own cursor.
type Section struct {
	Syslog Syslog `yaml:"syslog"`
	HTTPS  HTTPS  `yaml:"https"`
	// Rate is the most messages per second sent to one target.
	Rate int `yaml:"rate"`
	// Batch is the most records read, sent and acknowledged at once; the cursor moves
	// after each acknowledged batch.
	Batch int `yaml:"batch"`
	// Retry is the wait after a failed batch before it is sent again.
	Retry conf.Duration `yaml:"retry"`
	// Poll is how often the trail is looked at for new records when the backlog is empty.
	Poll conf.Duration `yaml:"poll"`
	// SilentAfter is how long an enrolled agent may go without checking in before it
	// is recorded (and forwarded) as alert.device_silent; 0 turns that alert off.
	SilentAfter conf.Duration `yaml:"silent_after"`
}

// Syslog is an RFC 5425 target: RFC 5424 messages, octet-counted, over TLS.
type Syslog struct {
	Address    string `yaml:"address"`     // host:port; empty: no syslog target
	CAFile     string `yaml:"ca_file"`     // PEM CAs for the server's certificate; empty: the system's
	ServerName string `yaml:"server_name"` // name checked in the certificate; empty: Address's host
	Facility   string `yaml:"facility"`    // local0..local7 or auth
}

// HTTPS is a JSON-over-HTTPS target: each batch is POSTed as a JSON array.
type HTTPS struct {
	URL    string      `yaml:"url"` // https://...; empty: no HTTPS target
	Token  conf.Secret `yaml:"token"`
	CAFile string      `yaml:"ca_file"`
}

// Enabled reports whether any target is set.
func (s Section) Enabled() bool { return s.Syslog.Address != "" || s.HTTPS.URL != "" }

// facilities are the syslog facilities a site may choose (RFC 5424 numbers).
var facilities = map[string]int{"auth": 4, "authpriv": 10, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23}

// Validate checks the siem section.
func (s Section) Validate(key string, ps *conf.Problems) {
	if a := s.Syslog.Address; a != "" {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			ps.Addf(key+".syslog.address", "want host:port, got %q", a)
		}
	}
	if _, ok := facilities[s.Syslog.Facility]; !ok {
		ps.Addf(key+".syslog.facility", "must be auth, authpriv or local0..local7, got %q", s.Syslog.Facility)
	}
	if u := s.HTTPS.URL; u != "" {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" {
			ps.Addf(key+".https.url", "want an https:// URL, got %q", u)
		}
		if s.HTTPS.Token == "" {
			ps.Addf(key+".https.token", "must be set with https.url")
		}
	}
	if s.Rate < 1 || s.Rate > 100000 {
		ps.Addf(key+".rate", "must be 1-100000 messages per second, got %d", s.Rate)
	}
	if s.Batch < 1 || s.Batch > 10000 {
		ps.Addf(key+".batch", "must be 1-10000, got %d", s.Batch)
	}
	if d := s.Retry.D(); d < time.Second || d > time.Hour {
		ps.Addf(key+".retry", "must be between 1s and 1h, got %s", d)
	}
	if d := s.Poll.D(); d < 100*time.Millisecond || d > time.Hour {
		ps.Addf(key+".poll", "must be between 100ms and 1h, got %s", d)
	}
	if d := s.SilentAfter.D(); d != 0 && (d < 10*time.Minute || d > 90*24*time.Hour) {
		ps.Addf(key+".silent_after", "must be 0 (off) or between 10m and 90 days, got %s", d)
	}
}

// DefaultSection is the siem section of a config that leaves it out: no target.
func DefaultSection() Section {
	return Section{Syslog: Syslog{Facility: "local0"}, Rate: 100, Batch: 100,
		Retry: conf.Duration(30 * time.Second), Poll: conf.Duration(2 * time.Second),
		SilentAfter: conf.Duration(24 * time.Hour)}
}

// facility returns the facility's number (Validate has checked the name).
func (s Syslog) facility() int {
	if f, ok := facilities[s.Facility]; ok {
		return f
	}
	return facilities["local0"]
}

func (s Syslog) String() string { return fmt.Sprintf("syslog+tls://%s", s.Address) }
