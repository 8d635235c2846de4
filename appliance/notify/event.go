package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/inventory"
)

// Kind is what happened. Recipients choose kinds; the kind is in every message.
type Kind string

// The kinds of event the appliance notifies about.
const (
	ApprovalWaiting   Kind = "approval_waiting"   // a rollout waits for an approver
	RolloutPaused     Kind = "rollout_paused"     // a rollout was paused (by a person or a threshold)
	RolloutFailed     Kind = "rollout_failed"     // a rollout was halted for good
	DeviceOverdue     Kind = "device_overdue"     // a device is past its patch deadline
	ExpiryNear        Kind = "expiry_near"        // TUF metadata, a key or a certificate expires soon
	ExceptionExpiring Kind = "exception_expiring" // a patch exception ends soon
	NewDevice         Kind = "new_device"         // discovery found a device not seen before
	BackupFailed      Kind = "backup_failed"      // a backup failed or is missing
	ReviewOverdue     Kind = "review_overdue"     // a self-approved rollout is not countersigned in time
	// ExploitedVulnerability: an asset newly has a known-exploited vulnerability.
	ExploitedVulnerability Kind = "exploited_vulnerability"
)

// Kinds lists every Kind, in the order the README gives them.
var Kinds = []Kind{ApprovalWaiting, RolloutPaused, RolloutFailed, DeviceOverdue, ExpiryNear,
	ExceptionExpiring, NewDevice, BackupFailed, ReviewOverdue,
	ExploitedVulnerability}

var kindTitles = map[Kind]string{
	ApprovalWaiting: "Approval waiting", RolloutPaused: "Rollout paused", RolloutFailed: "Rollout failed",
	DeviceOverdue: "Device overdue", ExpiryNear: "Expiry near", ExceptionExpiring: "Exception expiring",
	NewDevice: "New device", BackupFailed: "Backup failed", ReviewOverdue: "Review overdue",
	ExploitedVulnerability: "Exploited vulnerability",
}

// Title is the kind in words ("Approval waiting").
func (k Kind) Title() string {
	if t, ok := kindTitles[k]; ok {
		return t
	}
	return string(k)
}

// Event is one notification. It carries no more than a message may say: the kind, one
// line written by the appliance (never free text from a device or a record), the object
// it is about, and the devices by name and address only — never an asset's owner,
// location, notes, serial or other attributes that may identify a patient (ePHI).
type Event struct {
	Kind    Kind
	Subject string    // one line, e.g. "Rollout 7 waits for approval"
	Object  string    // what it is about, as the audit trail names it: rollout/7, asset/ID
	Assets  []Asset   // the devices concerned, by name and address
	Time    time.Time // when it happened; zero: when Notify was called
	ID      string    // set by Notify: one value per event, the same in every retry
}

// Asset is a device as a message names it: its name and one address.
type Asset struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
}

// AssetOf is the part of an inventory asset a message may carry: its name and most
// recent address. Everything else (owner, location, notes, serial, tags...) stays out.
func AssetOf(a inventory.Asset) Asset {
	out := Asset{Name: a.Name}
	if len(a.Addresses) > 0 {
		out.Address = a.Addresses[0]
	}
	return out
}

// payload is the JSON body of a webhook POST.
type payload struct {
	ID      string  `json:"id"`
	Kind    Kind    `json:"kind"`
	Title   string  `json:"title"`
	Subject string  `json:"subject"`
	Object  string  `json:"object,omitempty"`
	Assets  []Asset `json:"assets"`
	Time    string  `json:"time"`
	// Sent is the X-Patchgate-Timestamp of this attempt, inside the signed body.
	Sent int64 `json:"sent"`
}

// body is ev as a webhook body, sent at sent.
func (ev Event) body(sent time.Time) []byte {
	p := payload{ID: ev.ID, Kind: ev.Kind, Title: ev.Kind.Title(), Subject: oneLine(ev.Subject), Object: ev.Object,
		Assets: ev.Assets, Time: ev.Time.UTC().Format(time.RFC3339), Sent: sent.Unix()}
	if p.Assets == nil {
		p.Assets = []Asset{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p) // plain strings and slices: cannot fail
	return bytes.TrimRight(b.Bytes(), "\n")
}

// mailSubject is the email's subject line.
func (ev Event) mailSubject() string {
	return "[Patchgate] " + ev.Kind.Title() + ": " + oneLine(ev.Subject)
}

// text is the email's plain-text body.
func (ev Event) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", oneLine(ev.Subject))
	fmt.Fprintf(&b, "Kind:    %s (%s)\n", ev.Kind.Title(), ev.Kind)
	fmt.Fprintf(&b, "When:    %s\n", ev.Time.UTC().Format("2006-01-02 15:04 MST"))
	if ev.Object != "" {
		fmt.Fprintf(&b, "Object:  %s\n", ev.Object)
	}
	for i, a := range ev.Assets {
		label := "Device:  "
		if i > 0 {
			label = "         "
		}
		if a.Address != "" {
			fmt.Fprintf(&b, "%s%s (%s)\n", label, oneLine(a.Name), oneLine(a.Address))
		} else {
			fmt.Fprintf(&b, "%s%s\n", label, oneLine(a.Name))
		}
	}
	fmt.Fprintf(&b, "\nSent by the Patchgate appliance (notification %s). Its admin pages have the details.\n", ev.ID)
	return b.String()
}

// oneLine keeps s on one line (no header or layout injection).
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}
