package forward

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
)

// Syslog severities (RFC 5424, 6.2.1) the forwarder uses.
const (
	sevWarning = 4
	sevNotice  = 5
)

// Alert actions: the events the sites ask to be alerted on. They are audit actions that
// exist in the trail; each is forwarded with severity warning and its alert name.
// A device overdue against its deadline and a device that stopped checking in are
// rollout state, not records of their own: the wiring (appliance/siem.go) records them
// as alert.device_overdue and alert.device_silent when it first sees them.
var alertActions = map[string]string{
	"deployment.failed":    "deployment_failed",
	"alert.device_overdue": "device_overdue",
	"alert.device_silent":  "device_silent",
}

// warningPrefixes are actions forwarded as warnings without being one of the alerts:
// integrity failures, a trail repaired at start, a record without its action.
var warningPrefixes = []string{"cache.integrity.", "audit.recovered", "audit.not_committed", "auth.login_failed"}

// classify returns a record's syslog severity and its alert name ("" when none).
func classify(action string) (int, string) {
	if a, ok := alertActions[action]; ok {
		return sevWarning, a
	}
	for _, p := range warningPrefixes {
		if strings.HasPrefix(action, p) {
			return sevWarning, ""
		}
	}
	return sevNotice, ""
}

// details returns the record's details without any key that looks like patient data.
// The trail refuses such keys already (audit.Entry.Check); this is the second guard,
// so a record that reached the file some other way still sends none.
func details(r audit.Record) map[string]string {
	out := make(map[string]string, len(r.Details))
	for k, v := range r.Details {
		if !audit.LooksLikeEPHI(k) {
			out[k] = v
		}
	}
	return out
}

// Message is one record as the JSON target gets it.
type Message struct {
	Seq        uint64            `json:"seq"`
	Time       time.Time         `json:"time"`
	Host       string            `json:"host"`
	App        string            `json:"app"`
	Severity   string            `json:"severity"`
	Alert      string            `json:"alert,omitempty"`
	Action     string            `json:"action"`
	Actor      string            `json:"actor"`
	Role       string            `json:"role,omitempty"`
	AuthMethod string            `json:"auth_method,omitempty"`
	Source     string            `json:"source,omitempty"`
	Object     string            `json:"object,omitempty"`
	Before     string            `json:"before,omitempty"`
	After      string            `json:"after,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	Hash       string            `json:"hash"`
}

// appName is the APP-NAME of every syslog message and the app of every JSON one.
const appName = "patchgate"

// NewMessage turns a record into its JSON message.
func NewMessage(r audit.Record, host string) Message {
	sev, alert := classify(r.Action)
	name := "notice"
	if sev == sevWarning {
		name = "warning"
	}
	d := details(r)
	if len(d) == 0 {
		d = nil
	}
	return Message{Seq: r.Seq, Time: r.Time.UTC(), Host: host, App: appName, Severity: name, Alert: alert,
		Action: r.Action, Actor: r.Actor, Role: r.Role, AuthMethod: r.AuthMethod, Source: r.Source, Object: r.Object,
		Before: r.Before, After: r.After, Details: d, Hash: r.Hash}
}

// JSON encodes a batch for the HTTPS target: a JSON array of messages.
func JSON(recs []audit.Record, host string) []byte {
	msgs := make([]Message, len(recs))
	for i, r := range recs {
		msgs[i] = NewMessage(r, host)
	}
	b, _ := json.Marshal(msgs) // strings and times only: cannot fail
	return b
}

// sdID names the structured data elements: 32473 is the private enterprise number
// RFC 5612 reserves for documentation, as patchgate has none of its own.
const (
	sdAudit   = "audit@32473"
	sdDetails = "details@32473"
)

// Syslog5424 formats a record as an RFC 5424 message (without the RFC 5425 length
// prefix): PRI from facility and the record's severity, the record's time in UTC with
// microseconds, host, APP-NAME patchgate, no PROCID, MSGID the action (at most 32
// characters), an audit@32473 element with the record's fields, a details@32473
// element with its details, and a short text.
func Syslog5424(r audit.Record, facility int, host string) []byte {
	sev, alert := classify(r.Action)
	var b strings.Builder
	b.WriteString("<" + strconv.Itoa(facility*8+sev) + ">1 ")
	b.WriteString(r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00") + " ")
	b.WriteString(header(host, 255) + " " + appName + " - " + header(r.Action, 32) + " ")
	b.WriteString("[" + sdAudit)
	param(&b, "seq", strconv.FormatUint(r.Seq, 10))
	for _, f := range [][2]string{{"action", r.Action}, {"alert", alert}, {"actor", r.Actor}, {"role", r.Role},
		{"auth_method", r.AuthMethod}, {"source", r.Source}, {"object", r.Object}, {"before", r.Before},
		{"after", r.After}, {"hash", r.Hash}} {
		if f[1] != "" {
			param(&b, f[0], f[1])
		}
	}
	b.WriteString("]")
	if d := details(r); len(d) > 0 {
		b.WriteString("[" + sdDetails)
		for _, k := range slices.Sorted(maps.Keys(d)) {
			param(&b, header(k, 32), d[k])
		}
		b.WriteString("]")
	}
	text := r.Actor + " " + r.Action
	if r.Object != "" {
		text += " " + r.Object
	}
	b.WriteString(" \xEF\xBB\xBF" + strings.ToValidUTF8(text, "\uFFFD")) // BOM: the text is UTF-8
	return []byte(b.String())
}

// header makes s a header field or SD-NAME: printable US-ASCII without space, '=', ']'
// or '"', at most n bytes, "-" when empty.
func header(s string, n int) string {
	out := []byte(s)
	for i, c := range out {
		if c <= 32 || c >= 127 || c == '=' || c == ']' || c == '"' {
			out[i] = '_'
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// param writes one SD-PARAM with '"', '\' and ']' escaped (RFC 5424, 6.3.3).
func param(b *strings.Builder, name, value string) {
	b.WriteString(" " + name + `="`)
	b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(strings.ToValidUTF8(value, "\uFFFD")))
	b.WriteString(`"`)
}
