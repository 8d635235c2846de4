package advisory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/supply"
)

// Reasons a fetch or import is refused, as the feeds API and the health problems name
// them.
const (
	ReasonNetwork   = "unreachable" // no connection, a timeout, a status other than 200
	ReasonTooLarge  = "too_large"   // a file beyond max_size, or more documents or queries than allowed
	ReasonMalformed = "malformed"   // not the format it should be
	ReasonSignature = "signature"   // a CSAF document without a valid signature by the pinned key
	ReasonDigest    = "digest"      // a CSAF document whose .sha256 does not match
)

// refusal is an error with its reason.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, format string, args ...any) error {
	return &refusal{reason, fmt.Errorf(format, args...)}
}

// reasonOf is err's reason: a refusal's, too_large or malformed for an ErrInvalid (by
// its words), else unreachable.
func reasonOf(err error) string {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.reason
	case errors.Is(err, ErrInvalid) && strings.Contains(err.Error(), "larger than"):
		return ReasonTooLarge
	case errors.Is(err, ErrInvalid):
		return ReasonMalformed
	}
	return ReasonNetwork
}

// fetcher gets feed files through the appliance's upstream client, bounded in bytes
// and paced by the upstream cap.
type fetcher struct {
	client    *http.Client
	pace      func(ctx context.Context, r io.Reader) io.Reader
	userAgent string
	limit     int64
}

// do sends req and reads a 200 answer whole, at most f.limit bytes.
func (f *fetcher) do(req *http.Request) ([]byte, error) {
	b, _, err := f.doHeader(req)
	return b, err
}

// doHeader is do, also answering the response's header; a 304 answer (to a
// conditional request) is errNotModified.
func (f *fetcher) doHeader(req *http.Request) ([]byte, http.Header, error) {
	if f.userAgent != "" {
		req.Header.Set("User-Agent", f.userAgent)
	}
	u := req.URL.Redacted()
	resp, err := f.client.Do(req)
	if err != nil {
		if c := context.Cause(req.Context()); c != nil && req.Context().Err() != nil {
			return nil, nil, c
		}
		return nil, nil, refuse(ReasonNetwork, "get %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil, &refusal{ReasonNetwork, fmt.Errorf("get %s: status 404: %w", u, errNotFound)}
	}
	if resp.StatusCode == http.StatusNotModified {
		return nil, resp.Header, errNotModified
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, refuse(ReasonNetwork, "get %s: status %d", u, resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/html" {
		return nil, nil, refuse(ReasonMalformed, "get %s: an HTML page where a feed file was expected", u)
	}
	if resp.ContentLength > f.limit {
		return nil, nil, refuse(ReasonTooLarge, "get %s: %d bytes, more than max_size %d", u, resp.ContentLength, f.limit)
	}
	var body io.Reader = resp.Body
	if f.pace != nil {
		body = f.pace(req.Context(), body)
	}
	b, err := io.ReadAll(io.LimitReader(body, f.limit+1))
	if err != nil {
		return nil, nil, refuse(ReasonNetwork, "get %s: read: %v", u, err)
	}
	if int64(len(b)) > f.limit {
		return nil, nil, refuse(ReasonTooLarge, "get %s: more than max_size %d bytes", u, f.limit)
	}
	return b, resp.Header, nil
}

func (f *fetcher) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, refuse(ReasonMalformed, "bad URL %q: %v", u, err)
	}
	return f.do(req)
}

// validators are a file's HTTP cache validators (RFC 9110 §8.8), sent back on the
// next fetch of it.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// getIfChanged gets u with a conditional request (If-None-Match, If-Modified-Since)
// when v has validators: errNotModified when the server answers it has not changed.
// It answers the file's new validators.
func (f *fetcher) getIfChanged(ctx context.Context, u string, v validators) ([]byte, validators, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, validators{}, refuse(ReasonMalformed, "bad URL %q: %v", u, err)
	}
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	b, h, err := f.doHeader(req)
	if err != nil {
		return nil, validators{}, err
	}
	return b, validators{ETag: h.Get("ETag"), LastModified: h.Get("Last-Modified")}, nil
}

func (f *fetcher) postJSON(ctx context.Context, u string, v any) ([]byte, error) {
	body, _ := json.Marshal(v) // plain structs: cannot fail
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, refuse(ReasonMalformed, "bad URL %q: %v", u, err)
	}
	req.Header.Set("Content-Type", "application/json")
	return f.do(req)
}

// fetchKEV fetches a KEV catalog.
func (s *Service) fetchKEV(ctx context.Context, fd Feed) (Data, error) {
	b, err := s.fetch.get(ctx, fd.URL)
	if err != nil {
		return Data{}, err
	}
	k, err := ParseKEV(bytes.NewReader(b), s.fetch.limit)
	if err != nil {
		return Data{}, fmt.Errorf("%s: %w", fd.URL, err)
	}
	return kevData(k), nil
}

func kevData(k *KEV) Data {
	d := Data{Kind: KindKEV, Version: k.Version, KEV: make([]KEVEntry, 0, len(k.Entries))}
	for _, e := range k.Entries {
		d.KEV = append(d.KEV, e)
	}
	slices.SortFunc(d.KEV, func(a, b KEVEntry) int { return strings.Compare(a.CVE, b.CVE) })
	return d
}

// fetchCSAF discovers a provider's advisories from its provider-metadata.json
// (directory index.txt, ROLIE feeds) and takes each only with its .sha256 matching and
// its .asc signature made by the pinned key. One bad document refuses the fetch.
func (s *Service) fetchCSAF(ctx context.Context, fd Feed, keys *supply.Keyring) (Data, error) {
	base, err := url.Parse(fd.URL)
	if err != nil {
		return Data{}, refuse(ReasonMalformed, "bad URL %q: %v", fd.URL, err)
	}
	b, err := s.fetch.get(ctx, fd.URL)
	if err != nil {
		return Data{}, err
	}
	pm, err := ParseProviderMetadata(bytes.NewReader(b), s.fetch.limit)
	if err != nil {
		return Data{}, fmt.Errorf("%s: %w", fd.URL, err)
	}
	prev, _, err := loadData(ctx, s.db, fd.Name)
	if err != nil {
		return Data{}, fmt.Errorf("advisory: %s: previous data: %w", fd.Name, err)
	}
	var docs []string
	var changed []change // documents with a time: changes.csv lines, ROLIE entries
	resolve := func(from *url.URL, ref string) (string, error) {
		u, err := from.Parse(ref)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return "", refuse(ReasonMalformed, "%s: bad advisory URL %q", from.Redacted(), ref)
		}
		return u.String(), nil
	}
	for _, dir := range pm.Directories {
		du, err := base.Parse(strings.TrimSuffix(dir, "/") + "/")
		if err != nil {
			return Data{}, refuse(ReasonMalformed, "%s: bad directory_url %q", fd.URL, dir)
		}
		cs, err := s.fetch.get(ctx, du.String()+"changes.csv")
		switch {
		case err == nil:
			list, err := parseChanges(cs)
			if err != nil {
				return Data{}, fmt.Errorf("%schanges.csv: %w", du, err)
			}
			for _, c := range list {
				if c.url, err = resolve(du, c.url); err != nil {
					return Data{}, err
				}
				changed = append(changed, c)
			}
			continue
		case !errors.Is(err, errNotFound):
			return Data{}, err
		}
		idx, err := s.fetch.get(ctx, du.String()+"index.txt") // no changes.csv: the whole index
		if err != nil {
			return Data{}, err
		}
		for _, p := range parseIndex(idx) {
			u, err := resolve(du, p)
			if err != nil {
				return Data{}, err
			}
			docs = append(docs, u)
		}
	}
	rolie := map[string]rolieFeed{}
	for _, feed := range pm.Feeds {
		fu, err := resolve(base, feed)
		if err != nil {
			return Data{}, err
		}
		rf, err := s.fetchROLIE(ctx, fu, prev.ROLIE[fu], resolve)
		if err != nil {
			return Data{}, err
		}
		rolie[fu] = rf
		for _, e := range rf.Entries {
			if e.Updated.IsZero() {
				docs = append(docs, e.URL) // no time: taken every fetch
			} else {
				changed = append(changed, change{e.URL, e.Updated})
			}
		}
	}
	changed = latestChanges(changed)
	docs = slices.DeleteFunc(docs, func(u string) bool {
		_, listed := slices.BinarySearchFunc(changed, u, func(c change, u string) int { return strings.Compare(c.url, u) })
		return listed
	})
	slices.Sort(docs)
	docs = slices.Compact(docs)
	if len(docs) > s.sec.MaxDocuments {
		return Data{}, refuse(ReasonTooLarge, "%s lists %d advisories, more than max_documents %d", fd.URL, len(docs), s.sec.MaxDocuments)
	}
	d := Data{Kind: KindCSAF, Version: pm.Publisher}
	if len(changed) > 0 {
		var fetch []string
		fetch, d = incremental(prev, changed, s.sec.MaxDocuments-len(docs))
		d.Kind, d.Version = KindCSAF, pm.Publisher
		docs = append(docs, fetch...)
	}
	if len(rolie) > 0 {
		d.ROLIE = rolie
	}
	for _, u := range docs {
		doc, err := s.fetch.get(ctx, u)
		if err != nil {
			return Data{}, err
		}
		sum, err := s.fetch.get(ctx, u+".sha256")
		if err != nil {
			return Data{}, err
		}
		sig, err := s.fetch.get(ctx, u+".asc")
		if err != nil {
			return Data{}, err
		}
		advs, err := verifyCSAF(u, doc, sum, sig, []*supply.Keyring{keys}, s.opts.Clock.Now(), s.fetch.limit)
		if err != nil {
			return Data{}, err
		}
		for i := range advs {
			advs[i].From = u
		}
		d.Advisories = append(d.Advisories, advs...)
		d.fetched++
	}
	return d, nil
}

// fetchROLIE reads a ROLIE feed's entries, with a conditional request when the
// previous delivery has the feed's validators and entries: unchanged (304), the
// previous entries stand and the feed is not read again. Entry URLs are resolved
// against the feed's URL.
func (s *Service) fetchROLIE(ctx context.Context, fu string, prev rolieFeed, resolve func(*url.URL, string) (string, error)) (rolieFeed, error) {
	cond := prev.validators
	if len(prev.Entries) == 0 {
		cond = validators{}
	}
	b, v, err := s.fetch.getIfChanged(ctx, fu, cond)
	switch {
	case errors.Is(err, errNotModified) && cond != (validators{}):
		return prev, nil
	case errors.Is(err, errNotModified):
		return rolieFeed{}, refuse(ReasonNetwork, "get %s: status 304 to a request that was not conditional", fu)
	case err != nil:
		return rolieFeed{}, err
	}
	entries, err := parseROLIE(b)
	if err != nil {
		return rolieFeed{}, fmt.Errorf("%s: %w", fu, err)
	}
	base, _ := url.Parse(fu) // resolved above: parses
	rf := rolieFeed{validators: v, Entries: make([]rolieEntry, 0, len(entries))}
	for _, e := range entries {
		u, err := resolve(base, e.url)
		if err != nil {
			return rolieFeed{}, err
		}
		rf.Entries = append(rf.Entries, rolieEntry{URL: u, Updated: e.at})
	}
	return rf, nil
}

// verifyCSAF checks a CSAF document against its .sha256 file (when sum is not nil)
// and its detached signature by a pinned key, then parses it.
func verifyCSAF(name string, doc, sum, sig []byte, keys []*supply.Keyring, now time.Time, limit int64) ([]Advisory, error) {
	if sum != nil {
		f := strings.Fields(string(sum))
		got := sha256.Sum256(doc)
		if len(f) == 0 || !strings.EqualFold(f[0], hex.EncodeToString(got[:])) {
			return nil, refuse(ReasonDigest, "%s: sha256 %x does not match its .sha256 file", name, got)
		}
	}
	keys = slices.DeleteFunc(slices.Clone(keys), func(k *supply.Keyring) bool { return k == nil })
	if len(keys) == 0 {
		return nil, refuse(ReasonSignature, "%s: no pinned provider key to check its signature with", name)
	}
	if len(sig) == 0 {
		return nil, refuse(ReasonSignature, "%s: unsigned (no .asc signature)", name)
	}
	var errs []error
	for _, k := range keys {
		_, err := k.VerifyDetached(bytes.NewReader(doc), sig, now)
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, refuse(ReasonSignature, "%s: %v", name, errors.Join(errs...))
	}
	advs, err := ParseCSAF(bytes.NewReader(doc), limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return advs, nil
}

// osvQuery is one POST /v1/query body.
type osvQuery struct {
	Package struct {
		Name      string `json:"name"`
		Ecosystem string `json:"ecosystem"`
	} `json:"package"`
	Version string `json:"version"`
}

// fetchOSV asks an OSV API about every package version agents reported, one query
// each, at most max_queries.
func (s *Service) fetchOSV(ctx context.Context, fd Feed) (Data, error) {
	pkgs, err := loadPackages(ctx, s.db)
	if err != nil {
		return Data{}, fmt.Errorf("advisory: packages: %w", err)
	}
	seen := map[osvQuery]bool{}
	var qs []osvQuery
	for _, ps := range pkgs {
		if ps.Ecosystem == "" {
			continue
		}
		for _, p := range ps.Packages {
			var q osvQuery
			q.Package.Name, q.Package.Ecosystem, q.Version = p.Name, ps.Ecosystem, p.Version
			if !seen[q] {
				seen[q] = true
				qs = append(qs, q)
			}
		}
	}
	if len(qs) > s.sec.MaxQueries {
		return Data{}, refuse(ReasonTooLarge, "agents report %d package versions, more than max_queries %d", len(qs), s.sec.MaxQueries)
	}
	slices.SortFunc(qs, func(a, b osvQuery) int {
		return strings.Compare(a.Package.Ecosystem+"/"+a.Package.Name+"@"+a.Version, b.Package.Ecosystem+"/"+b.Package.Name+"@"+b.Version)
	})
	api := strings.TrimSuffix(fd.URL, "/") + "/v1/query"
	d := Data{Kind: KindOSV}
	ids := map[string]bool{}
	for _, q := range qs {
		b, err := s.fetch.postJSON(ctx, api, q)
		if err != nil {
			return Data{}, err
		}
		advs, err := parseOSVQuery(b)
		if err != nil {
			return Data{}, fmt.Errorf("%s (%s %s): %w", api, q.Package.Name, q.Version, err)
		}
		for _, a := range advs {
			if !ids[a.ID] {
				ids[a.ID] = true
				d.Advisories = append(d.Advisories, a)
			}
		}
	}
	return d, nil
}
