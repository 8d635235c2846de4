package inventory

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/fingerprint"
)

// Asset is one device as the inventory knows it: observed attributes, with
// admin-set values taking precedence, and the admin-only attributes.
type Asset struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"` // the admin's name, else hostname, else vendor and model, else the ID
	Key       string   `json:"key"`  // the kind of identifier the asset is keyed on
	MAC       string   `json:"mac,omitempty"`
	RandomMAC bool     `json:"random_mac,omitempty"`
	Addresses []string `json:"addresses"` // most recent first
	Segment   string   `json:"segment,omitempty"`

	Hostname       string  `json:"hostname,omitempty"`
	Serial         string  `json:"serial,omitempty"`
	Type           string  `json:"type"`
	TypeConfidence float64 `json:"type_confidence"`
	Vendor         string  `json:"vendor,omitempty"`
	Model          string  `json:"model,omitempty"`
	OS             string  `json:"os,omitempty"`
	Firmware       string  `json:"firmware,omitempty"`

	AdminOnly
	Tags []string `json:"tags,omitempty"`

	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	New       bool      `json:"new"` // first seen within the configured window

	Sources     []string            `json:"sources,omitempty"`
	Identifiers []string            `json:"identifiers,omitempty"`
	AdminSet    []string            `json:"admin_set,omitempty"` // attributes an admin set
	Evidence    *fingerprint.Result `json:"evidence,omitempty"`
	Facts       []netscan.Fact      `json:"facts,omitempty"`
}

// HasTag reports whether a carries tag.
func (a Asset) HasTag(tag string) bool { return slices.Contains(a.Tags, tag) }

// Attributes are what an administrator sets on an asset. A nil field is left as it
// is; a pointer to "" (or an empty tag list) clears the admin's value, so the
// observed one shows again where there is one. Observations never change these.
type Attributes struct {
	Name        *string `json:"name,omitempty"`
	Owner       *string `json:"owner,omitempty"`
	Location    *string `json:"location,omitempty"`
	Criticality *string `json:"criticality,omitempty"` // low, medium, high, critical
	EPHI        *string `json:"ephi,omitempty"`        // yes, no, unknown
	Support     *string `json:"support,omitempty"`     // supported, eol, unknown
	EOLDate     *string `json:"eol_date,omitempty"`    // YYYY-MM-DD
	Ring        *string `json:"ring,omitempty"`
	LastPatch   *string `json:"last_patch,omitempty"` // YYYY-MM-DD
	Compliance  *string `json:"compliance,omitempty"` // compliant, non_compliant, exception, unknown
	Notes       *string `json:"notes,omitempty"`
	// Overrides of observed attributes.
	Hostname *string   `json:"hostname,omitempty"`
	Serial   *string   `json:"serial,omitempty"`
	Type     *string   `json:"type,omitempty"`
	Vendor   *string   `json:"vendor,omitempty"`
	Model    *string   `json:"model,omitempty"`
	OS       *string   `json:"os,omitempty"`
	Firmware *string   `json:"firmware,omitempty"`
	Tags     *[]string `json:"tags,omitempty"`
}

// adminAttrs is the stored form: a field is set when non-empty.
type adminAttrs struct {
	Name string `json:"name,omitempty"`
	AdminOnly
	Hostname string   `json:"hostname,omitempty"`
	Serial   string   `json:"serial,omitempty"`
	Type     string   `json:"type,omitempty"`
	Vendor   string   `json:"vendor,omitempty"`
	Model    string   `json:"model,omitempty"`
	OS       string   `json:"os,omitempty"`
	Firmware string   `json:"firmware,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// AdminOnly are the attributes only an administrator sets (no observation has them).
// Asset and the stored admin values embed it, so both carry the same JSON keys.
type AdminOnly struct {
	Owner       string `json:"owner,omitempty"`
	Location    string `json:"location,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	EPHI        string `json:"ephi,omitempty"`
	Support     string `json:"support,omitempty"`
	EOLDate     string `json:"eol_date,omitempty"`
	Ring        string `json:"ring,omitempty"`
	LastPatch   string `json:"last_patch,omitempty"`
	Compliance  string `json:"compliance,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

var (
	tagRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,31}$`)
	ringRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// maxAttrLen bounds every free-text attribute.
const maxAttrLen = 200

// apply validates a and applies it to s, returning the names of the attributes that
// changed and every problem at once.
func (s *adminAttrs) apply(a Attributes) ([]string, error) {
	var errs []string
	var changed []string
	set := func(name string, dst *string, v *string, check func(string) string) {
		if v == nil {
			return
		}
		val := strings.TrimSpace(*v)
		if val != "" {
			if len(val) > maxAttrLen || netscan.CleanValue(val) != val {
				errs = append(errs, fmt.Sprintf("%s: must be at most %d printable characters", name, maxAttrLen))
				return
			}
			if check != nil {
				if msg := check(val); msg != "" {
					errs = append(errs, name+": "+msg)
					return
				}
			}
		}
		if *dst != val {
			*dst = val
			changed = append(changed, name)
		}
	}
	oneOf := func(vals ...string) func(string) string {
		return func(v string) string {
			if !slices.Contains(vals, v) {
				return fmt.Sprintf("must be one of %s, got %q", strings.Join(vals, ", "), v)
			}
			return ""
		}
	}
	date := func(v string) string {
		if _, err := time.Parse(time.DateOnly, v); err != nil || !dateRE.MatchString(v) {
			return fmt.Sprintf("must be a date YYYY-MM-DD, got %q", v)
		}
		return ""
	}
	set("name", &s.Name, a.Name, nil)
	set("owner", &s.Owner, a.Owner, nil)
	set("location", &s.Location, a.Location, nil)
	set("criticality", &s.Criticality, a.Criticality, oneOf("low", "medium", "high", "critical"))
	set("ephi", &s.EPHI, a.EPHI, oneOf("yes", "no", "unknown"))
	set("support", &s.Support, a.Support, oneOf("supported", "eol", "unknown"))
	set("eol_date", &s.EOLDate, a.EOLDate, date)
	set("ring", &s.Ring, a.Ring, func(v string) string {
		if !ringRE.MatchString(v) {
			return fmt.Sprintf("must be a ring name (lower-case letters, digits, - or _), got %q", v)
		}
		return ""
	})
	set("last_patch", &s.LastPatch, a.LastPatch, date)
	set("compliance", &s.Compliance, a.Compliance, oneOf("compliant", "non_compliant", "exception", "unknown"))
	set("notes", &s.Notes, a.Notes, nil)
	set("hostname", &s.Hostname, a.Hostname, nil)
	set("serial", &s.Serial, a.Serial, nil)
	types := make([]string, len(fingerprint.Types))
	for i, t := range fingerprint.Types {
		types[i] = string(t)
	}
	set("type", &s.Type, a.Type, oneOf(types...))
	set("vendor", &s.Vendor, a.Vendor, nil)
	set("model", &s.Model, a.Model, nil)
	set("os", &s.OS, a.OS, nil)
	set("firmware", &s.Firmware, a.Firmware, nil)
	if a.Tags != nil {
		var tags []string
		bad := false
		for _, t := range *a.Tags {
			t = strings.ToLower(strings.TrimSpace(t))
			if !tagRE.MatchString(t) {
				errs = append(errs, fmt.Sprintf("tags: %q is not a tag (lower-case letters, digits, _ . : -, max 32)", t))
				bad = true
				continue
			}
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		if len(tags) > 32 {
			errs = append(errs, "tags: at most 32")
			bad = true
		}
		slices.Sort(tags)
		if !bad && !slices.Equal(tags, s.Tags) {
			s.Tags = tags
			changed = append(changed, "tags")
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return changed, nil
}

// setNames lists the attributes set in s.
func (s adminAttrs) setNames() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    string
	}{{"name", s.Name}, {"owner", s.Owner}, {"location", s.Location}, {"criticality", s.Criticality},
		{"ephi", s.EPHI}, {"support", s.Support}, {"eol_date", s.EOLDate}, {"ring", s.Ring},
		{"last_patch", s.LastPatch}, {"compliance", s.Compliance}, {"notes", s.Notes},
		{"hostname", s.Hostname}, {"serial", s.Serial}, {"type", s.Type}, {"vendor", s.Vendor},
		{"model", s.Model}, {"os", s.OS}, {"firmware", s.Firmware}} {
		if f.v != "" {
			out = append(out, f.name)
		}
	}
	if len(s.Tags) > 0 {
		out = append(out, "tags")
	}
	return out
}

// pick returns the admin's value if set, else the observed one.
func pick(admin, observed string) string {
	if admin != "" {
		return admin
	}
	return observed
}
