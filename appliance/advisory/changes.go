package advisory

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// errNotFound is a feed file answered with 404: for changes.csv, the directory has
// none and its index.txt is read instead.
var errNotFound = errors.New("not found")

// errNotModified is a conditional request answered 304: the file has not changed.
var errNotModified = errors.New("not modified")

// rolieFeed is a ROLIE feed as the last good fetch read it: its validators and its
// entries (stored with the delivery).
type rolieFeed struct {
	validators
	Entries []rolieEntry `json:"entries"`
}

// rolieEntry is one document a ROLIE feed lists, with its "updated" time (zero when
// the entry has none: the document is then taken every fetch).
type rolieEntry struct {
	URL     string    `json:"url"`
	Updated time.Time `json:"updated,omitzero"`
}

// maxChanges bounds the documents a changes.csv may list (max_size bounds its bytes).
const maxChanges = 100000

// change is one line of a CSAF directory's changes.csv: a document (its path, then
// its URL once resolved) and when it last changed.
type change struct {
	url string
	at  time.Time
}

// parseChanges reads a CSAF directory's changes.csv: "path","RFC 3339 time" per line
// (CSAF 2.0 §7.1.16). A malformed file is an ErrInvalid naming the line.
func parseChanges(data []byte) ([]change, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 2
	r.ReuseRecord = true
	var out []change
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csaf: %w: changes.csv: %v", ErrInvalid, err)
		}
		if line > maxChanges {
			return nil, fmt.Errorf("csaf: %w: changes.csv lists more than %d documents", ErrInvalid, maxChanges)
		}
		path := strings.TrimSpace(rec[0])
		at, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[1]))
		switch {
		case path == "":
			return nil, fmt.Errorf("csaf: %w: changes.csv line %d: no document path", ErrInvalid, line)
		case err != nil:
			return nil, fmt.Errorf("csaf: %w: changes.csv line %d: time %q: want RFC 3339", ErrInvalid, line, clip(rec[1]))
		}
		out = append(out, change{url: path, at: at.UTC()})
	}
}

// latestChanges sorts cs by URL, keeping each document's latest change once.
func latestChanges(cs []change) []change {
	slices.SortFunc(cs, func(a, b change) int {
		return cmp.Or(strings.Compare(a.url, b.url), b.at.Compare(a.at))
	})
	return slices.CompactFunc(cs, func(a, b change) bool { return a.url == b.url })
}

// incremental plans a changes.csv fetch against the previous delivery: documents
// changed since (a time other than the one stored, or new) are to be fetched, newest
// first and at most budget of them; the advisories of the others are kept. A changed
// document beyond the budget keeps its previous advisories and stored time, so the
// next run takes it; one never fetched is pending. Documents no longer listed are
// dropped. It returns the URLs to fetch and the data kept.
func incremental(prev Data, changed []change, budget int) ([]string, Data) {
	d := Data{Docs: map[string]time.Time{}}
	byTime := slices.Clone(changed)
	slices.SortStableFunc(byTime, func(a, b change) int { return b.at.Compare(a.at) })
	keep := map[string]bool{}
	var fetch []string
	for _, c := range byTime {
		old, had := prev.Docs[c.url]
		switch {
		case had && old.Equal(c.at):
			keep[c.url], d.Docs[c.url] = true, c.at
		case budget > 0:
			budget--
			fetch = append(fetch, c.url)
			d.Docs[c.url] = c.at
		default:
			d.pending++
			if had {
				keep[c.url], d.Docs[c.url] = true, old
			}
		}
	}
	for _, a := range prev.Advisories {
		if a.From != "" && keep[a.From] {
			d.Advisories = append(d.Advisories, a)
		}
	}
	return fetch, d
}
