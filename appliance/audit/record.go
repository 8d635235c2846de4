package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Entry is what a subsystem says happened. Actor is a person's user name, an API token's
// name ("token:ci") or a subsystem ("system:inventory"); Source is the remote address the
// request came from, if any; Before and After are digests (see Digest) of the object's
// state around the change, empty when there was none; Details are short facts a person
// reads (ids, names, counts, reasons), never patient data.
type Entry struct {
	Actor      string            `json:"actor"`
	Role       string            `json:"role,omitempty"`
	AuthMethod string            `json:"auth_method,omitempty"`
	Source     string            `json:"source,omitempty"`
	Action     string            `json:"action"`
	Object     string            `json:"object,omitempty"`
	Before     string            `json:"before,omitempty"`
	After      string            `json:"after,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

// Record is an Entry as stored: numbered from 1, timed, and chained by hash. Hash is the
// hex SHA-256 of the record's canonical JSON without the hash field; Prev is the previous
// record's Hash (64 zeros for the first record).
type Record struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Entry
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// genesis is the Prev of record 1.
var genesis = strings.Repeat("0", 64)

// canonical is the hashed form of a record: fixed field order, UTC time with nanoseconds,
// details as a JSON object with sorted keys (encoding/json sorts map keys).
type canonical struct {
	Seq        uint64            `json:"seq"`
	Time       string            `json:"time"`
	Actor      string            `json:"actor"`
	Role       string            `json:"role"`
	AuthMethod string            `json:"auth_method"`
	Source     string            `json:"source"`
	Action     string            `json:"action"`
	Object     string            `json:"object"`
	Before     string            `json:"before"`
	After      string            `json:"after"`
	Details    map[string]string `json:"details"`
	Prev       string            `json:"prev"`
}

const timeFormat = "2006-01-02T15:04:05.000000000Z"

// ComputeHash returns the hash the record should have.
func (r Record) ComputeHash() string {
	d := r.Details
	if d == nil {
		d = map[string]string{}
	}
	b, _ := json.Marshal(canonical{r.Seq, r.Time.UTC().Format(timeFormat), r.Actor, r.Role, r.AuthMethod,
		r.Source, r.Action, r.Object, r.Before, r.After, d, r.Prev})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// line is the record as one line of the audit file.
func (r Record) line() []byte {
	b, _ := json.Marshal(fileRecord{r.Seq, r.Time.UTC().Format(timeFormat), r.Entry, r.Prev, r.Hash})
	return append(b, '\n')
}

type fileRecord struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"`
	Entry
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// parseLine reads one line of the audit file strictly.
func parseLine(b []byte) (Record, error) {
	var f fileRecord
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Record{}, fmt.Errorf("not a record: %v", err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("not a record: data after the record")
	}
	t, err := time.Parse(timeFormat, f.Time)
	if err != nil {
		return Record{}, fmt.Errorf("bad time %q", f.Time)
	}
	return Record{Seq: f.Seq, Time: t, Entry: f.Entry, Prev: f.Prev, Hash: f.Hash}, nil
}

// Digest returns "sha256:<hex>" of v's JSON encoding: a short, stable fingerprint of an
// object's state for Entry.Before and Entry.After. A []byte or string is hashed as is.
func Digest(v any) string {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			b = []byte(fmt.Sprintf("%#v", v))
		}
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ephi matches detail keys that would carry patient data. Records name people (staff)
// and devices; they must never hold patient names, record numbers, birth dates or
// diagnoses.
var ephi = regexp.MustCompile(`(?i)patient|mrn|medical.?record|birth|dob|ssn|social.?security|diagnos|prescription|rx.?number|insurance`)

// LooksLikeEPHI reports whether a detail key looks like patient data (Check refuses
// such keys; readers of the trail use it as a second guard).
func LooksLikeEPHI(key string) bool { return ephi.MatchString(key) }

const (
	maxField   = 256
	maxDetail  = 1024
	maxDetails = 32
)

// Check reports what is wrong with an entry: no actor or action, fields too long, too
// many details, or a detail key that looks like patient data.
func (e Entry) Check() error {
	if e.Actor == "" {
		return fmt.Errorf("audit: entry %q has no actor", e.Action)
	}
	if e.Action == "" {
		return fmt.Errorf("audit: entry by %q has no action", e.Actor)
	}
	for name, v := range map[string]string{"actor": e.Actor, "role": e.Role, "auth_method": e.AuthMethod,
		"source": e.Source, "action": e.Action, "object": e.Object, "before": e.Before, "after": e.After} {
		if len(v) > maxField {
			return fmt.Errorf("audit: entry %q: %s is %d bytes, at most %d", e.Action, name, len(v), maxField)
		}
	}
	if len(e.Details) > maxDetails {
		return fmt.Errorf("audit: entry %q has %d details, at most %d", e.Action, len(e.Details), maxDetails)
	}
	for k, v := range e.Details {
		if ephi.MatchString(k) {
			return fmt.Errorf("audit: entry %q: detail %q looks like patient data; records must not hold ePHI", e.Action, k)
		}
		if len(k) > maxField || len(v) > maxDetail {
			return fmt.Errorf("audit: entry %q: detail %q is too long", e.Action, k)
		}
	}
	return nil
}
