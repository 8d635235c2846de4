package vendorhost

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Asked is one row of the "asked for, not available" record: a device asked a mapped
// vendor host for a path no verified target vouches for.
type Asked struct {
	Device Device    `json:"device"`
	Host   string    `json:"host"`
	Path   string    `json:"path"`
	Count  int64     `json:"count"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
}

// maxPathBytes bounds the path kept per row: a device cannot make a row large.
const maxPathBytes = 512

// askedRecord is bounded and in memory on purpose: it is filled by unauthenticated
// device traffic, so a device walking through paths must cost neither disk writes nor
// unbounded rows; devices ask again on their own schedule, so after a restart the
// record fills again with what they still want. At max rows the least recently asked
// row is dropped.
type askedRecord struct {
	max  int
	mu   sync.Mutex
	rows map[askedKey]*Asked
}

type askedKey struct {
	addr       string
	host, path string
}

func newAskedRecord(max int) *askedRecord {
	return &askedRecord{max: max, rows: map[askedKey]*Asked{}}
}

// add records one request and reports whether the row is new.
func (a *askedRecord) add(d Device, host, path string, now time.Time) bool {
	if len(path) > maxPathBytes {
		path = path[:maxPathBytes]
	}
	k := askedKey{d.Addr.String(), host, path}
	a.mu.Lock()
	defer a.mu.Unlock()
	if row, ok := a.rows[k]; ok {
		row.Count++
		row.Last = now
		row.Device = d
		return false
	}
	if len(a.rows) >= a.max {
		var oldest askedKey
		var at time.Time
		for k, r := range a.rows {
			if at.IsZero() || r.Last.Before(at) {
				oldest, at = k, r.Last
			}
		}
		delete(a.rows, oldest)
	}
	a.rows[k] = &Asked{Device: d, Host: host, Path: path, Count: 1, First: now, Last: now}
	return true
}

// list returns the rows, most recently asked first.
func (a *askedRecord) list() []Asked {
	a.mu.Lock()
	out := make([]Asked, 0, len(a.rows))
	for _, r := range a.rows {
		out = append(out, *r)
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y Asked) int {
		return cmp.Or(y.Last.Compare(x.Last), strings.Compare(x.Host, y.Host), strings.Compare(x.Path, y.Path),
			strings.Compare(x.Device.Addr.String(), y.Device.Addr.String()))
	})
	return out
}

// has reports whether any device asked host for path.
func (a *askedRecord) has(host, path string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.rows {
		if k.host == host && k.path == path {
			return true
		}
	}
	return false
}

func (a *askedRecord) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.rows)
}

// onceSet remembers keys seen, to log something once per key; past max keys it starts
// over (so a flood of distinct keys costs bounded memory and at worst repeats a line).
type onceSet struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

func (o *onceSet) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[key]; ok {
		return false
	}
	if o.seen == nil || len(o.seen) >= o.max {
		o.seen = map[string]struct{}{}
	}
	o.seen[key] = struct{}{}
	return true
}

// Status is the vendor hosts' state for the status page and the API.
type Status struct {
	Hosts []string `json:"hosts"`
	// BadVendorURLs counts signed vendor_urls entries that are not http(s) URLs with a
	// DNS name and a path (skipped).
	BadVendorURLs int `json:"bad_vendor_urls"`
	// Asked is the "asked for, not available" record, most recent first.
	Asked []Asked `json:"asked"`
	// Outcomes are the read-back results of targets devices fetched, most recent first.
	Outcomes []Outcome `json:"outcomes"`
	// CAFingerprint is the site CA certificate's sha256 ("" without HTTPS).
	CAFingerprint string `json:"ca_sha256,omitempty"`
}

// Unavailable returns the "asked for, not available" record, most recently asked first.
func (s *Server) Unavailable() []Asked { return s.asked.list() }

// WasAsked reports whether a row of the "asked for, not available" record is for host
// (canonical form) and path.
func (s *Server) WasAsked(host, path string) bool { return s.asked.has(host, path) }

// Status returns the mapped hosts and the record; at most limit rows of it (0: all).
func (s *Server) Status(limit int) Status {
	st := Status{Hosts: s.Hosts(), Asked: s.asked.list(), Outcomes: s.outcomes.list("")}
	s.mu.Lock()
	st.BadVendorURLs = s.badURLs
	s.mu.Unlock()
	if limit > 0 && len(st.Asked) > limit {
		st.Asked = st.Asked[:limit]
	}
	if limit > 0 && len(st.Outcomes) > limit {
		st.Outcomes = st.Outcomes[:limit]
	}
	if ca := s.certs.ca; ca != nil {
		st.CAFingerprint = ca.Fingerprint()
	}
	return st
}
