package supply

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgate/patchgate/tuf"
)

func newHTTPClient() *http.Client { return tuf.NewHTTPClient() }

// Bounds of the small files a check reads whole.
const (
	maxSumsFile  = 4 << 20
	maxInRelease = 16 << 20
)

// checkRun is one check of one source.
type checkRun struct {
	s      *Service
	src    *source
	ctx    context.Context
	now    time.Time
	url    string // what is being fetched, for the rejection record
	staged int
}

// offer is a file the source offers, before it is downloaded: where, what it must hash
// to (sha256 "" when only a signature over the bytes tells), and its stated size (-1:
// not stated).
type offer struct {
	name, version, url string
	sha256             string
	size               int64
	verification       string
}

func (r *checkRun) do() error {
	c := r.src.cfg
	switch c.Kind {
	case KindURL:
		if c.SHA256 != "" {
			return r.take(offer{name: baseName(c.URL), url: c.URL, sha256: c.SHA256, size: -1, verification: "sha256 pinned in the config"}, nil)
		}
		sums, err := r.small(c.ChecksumsURL, maxSumsFile)
		if err != nil {
			return err
		}
		return r.takeListed(c.ChecksumsURL, sums, "sha256 listed in "+c.ChecksumsURL)
	case KindOpenPGP:
		signed := c.URL
		if c.ChecksumsURL != "" {
			signed = c.ChecksumsURL
		}
		sig, err := r.small(c.SignatureURL, maxSignature)
		if err != nil {
			return err
		}
		if c.ChecksumsURL != "" {
			sums, err := r.small(c.ChecksumsURL, maxSumsFile)
			if err != nil {
				return err
			}
			id, err := r.src.keys.VerifyDetached(bytes.NewReader(sums), sig, r.now)
			if err != nil {
				return within(c.SignatureURL, err)
			}
			return r.takeListed(c.ChecksumsURL, sums, fmt.Sprintf("sha256 listed in %s, signed by OpenPGP key %s", c.ChecksumsURL, id))
		}
		return r.take(offer{name: baseName(signed), url: signed, size: -1}, func(f *fetched) (string, error) {
			file, err := os.Open(f.path)
			if err != nil {
				return "", reject(reasonLocal, "%v", err)
			}
			defer file.Close()
			id, err := r.src.keys.VerifyDetached(file, sig, r.now)
			if err != nil {
				return "", within(c.SignatureURL, err)
			}
			return "detached OpenPGP signature by key " + id, nil
		})
	case KindDebian:
		return r.debian()
	case KindImport:
		return r.importDir()
	}
	return fmt.Errorf("supply: source %s: unknown kind %q", c.Name, c.Kind)
}

// small fetches a small file whole.
func (r *checkRun) small(u string, limit int64) ([]byte, error) {
	r.url = u
	return r.s.fetch.getBytes(r.ctx, u, limit)
}

// takeListed takes the files a checksum file lists (those Files selects), each found
// next to it.
func (r *checkRun) takeListed(sumsURL string, sums []byte, how string) error {
	entries, err := ParseSums(baseName(sumsURL), bytes.NewReader(sums))
	if err != nil {
		return reject(reasonMalformed, "%s", err)
	}
	n := 0
	for _, e := range entries {
		if !matches(r.src.cfg.Files, e.Name) {
			continue
		}
		n++
		u, err := resolve(sumsURL, e.Name)
		if err != nil {
			return err
		}
		if err := r.take(offer{name: e.Name, url: u, sha256: e.SHA256, size: -1, verification: how}, nil); err != nil {
			return err
		}
	}
	if n == 0 {
		return reject(reasonMalformed, "%s lists no file that files selects", sumsURL)
	}
	return nil
}

// take downloads o unless it is already a candidate, verifies it (its sha256 against
// o.sha256, then verify if given) and stages it. A file that fails is removed.
func (r *checkRun) take(o offer, verify func(*fetched) (string, error)) error {
	c := r.src.cfg
	if o.sha256 != "" {
		if have, err := r.s.has(r.ctx, c.Name, o.name, o.sha256); err != nil || have {
			return err
		}
	}
	r.url = o.url
	part := r.s.partPath(c.Name, o.url)
	f, err := r.s.fetch.download(r.ctx, o.url, part, o.size, int64(c.MaxSize))
	if err != nil {
		if r := reasonOf(err); r != reasonNetwork && r != reasonDeadline && r != reasonWindow {
			os.Remove(part) // keep only what may resume
		}
		return err
	}
	if o.sha256 != "" && f.sha256 != o.sha256 {
		os.Remove(part)
		return reject(reasonChecksum, "%s: sha256 %s, want %s (%s)", o.url, f.sha256, o.sha256, o.verification)
	}
	if verify != nil {
		if o.verification, err = verify(f); err != nil {
			os.Remove(part)
			return err
		}
	}
	return r.stage(o, f)
}

// stage moves verified bytes into the object store and records the candidate.
func (r *checkRun) stage(o offer, f *fetched) error {
	c := r.src.cfg
	dst := r.s.Path(f.sha256)
	if _, err := os.Stat(dst); err == nil {
		os.Remove(f.path) // the same bytes are staged already
	} else if err := os.Rename(f.path, dst); err != nil {
		os.Remove(f.path)
		return reject(reasonLocal, "stage %s: %v", o.name, err)
	}
	cand := Candidate{Source: c.Name, Kind: c.Kind, Name: o.name, Version: o.version, URL: o.url,
		Verification: o.verification, FetchedAt: r.s.opts.Clock.Now(), Size: f.size, SHA256: f.sha256, SHA512: f.sha512}
	id, added, err := r.s.insert(r.ctx, cand)
	if err != nil || !added {
		return err
	}
	cand.ID = id
	r.staged++
	r.s.met.staged.WithLabelValues(c.Name).Inc()
	r.s.met.stagedBytes.WithLabelValues(c.Name).Add(float64(f.size))
	r.s.log.Info("candidate staged", "source", c.Name, "name", o.name, "sha256", f.sha256, "size", f.size)
	if r.s.opts.Events != nil {
		if err := r.s.opts.Events.Staged(context.WithoutCancel(r.ctx), cand); err != nil {
			r.s.log.Error("supply: a new candidate could not be recorded", "source", c.Name, "err", err)
		}
	}
	return nil
}

// debian walks a Debian/Ubuntu archive: the InRelease clearsigned by the pinned key and
// within its Valid-Until, each selected Packages index by the sha256 InRelease lists,
// each selected package by the sha256 and size its index lists.
func (r *checkRun) debian() error {
	c := r.src.cfg
	root := strings.TrimSuffix(c.URL, "/") + "/"
	relURL := root + "dists/" + c.Suite + "/InRelease"
	data, err := r.small(relURL, maxInRelease)
	if err != nil {
		return err
	}
	text, id, err := r.src.keys.VerifyClearsigned(data, r.now)
	if err != nil {
		return within(relURL, err)
	}
	rel, err := ParseRelease("InRelease", bytes.NewReader(text))
	if err != nil {
		return reject(reasonMalformed, "%s: %s", relURL, err)
	}
	if !rel.ValidUntil.IsZero() && r.now.After(rel.ValidUntil) {
		return reject(reasonStale, "%s: valid until %s, now %s (a replayed or frozen archive)", relURL, rel.ValidUntil.UTC().Format(time.RFC3339), r.now.UTC().Format(time.RFC3339))
	}
	how := fmt.Sprintf("InRelease signed by OpenPGP key %s; Packages sha256 from InRelease; .deb sha256 and size from Packages", id)
	for _, comp := range c.Components {
		for _, arch := range c.Architectures {
			pkgs, err := r.packages(root+"dists/"+c.Suite+"/", rel, comp+"/binary-"+arch+"/Packages")
			if err != nil {
				return err
			}
			for _, p := range pkgs {
				if err := r.take(offer{name: path.Base(p.Filename), version: p.Version, url: root + p.Filename,
					sha256: p.SHA256, size: p.Size, verification: how}, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// packages fetches one Packages index (Packages.xz, .gz or plain, the first InRelease
// lists and the mirror serves), checks it against rel, and returns the selected
// packages.
func (r *checkRun) packages(dist string, rel *Release, index string) ([]Package, error) {
	var last error
	for _, form := range indexForms {
		e, ok := rel.Files[index+form]
		if !ok {
			continue
		}
		pkgs, err := r.packagesFrom(dist+e.Name, e, baseName(index))
		if reasonOf(err) == reasonStatus { // listed but not served (a 404): the next form
			last = err
			continue
		}
		return pkgs, err
	}
	if last != nil {
		return nil, last
	}
	return nil, reject(reasonMalformed, "%sInRelease lists none of %s.xz, %s.gz, %s", dist, index, index, index)
}

// packagesFrom fetches the index at u, listed in InRelease as e, and parses it (its
// errors name the uncompressed file, name, and its line).
func (r *checkRun) packagesFrom(u string, e Entry, name string) ([]Package, error) {
	r.url = u
	part := r.s.partPath(r.src.cfg.Name, u)
	defer os.Remove(part)
	f, err := r.s.fetch.download(r.ctx, u, part, e.Size, e.Size)
	if err != nil {
		return nil, err
	}
	if f.sha256 != e.SHA256 {
		return nil, reject(reasonChecksum, "%s: sha256 %s, InRelease lists %s", u, f.sha256, e.SHA256)
	}
	file, err := os.Open(part)
	if err != nil {
		return nil, reject(reasonLocal, "%v", err)
	}
	defer file.Close()
	in, err := decompress(e.Name, file, int64(r.src.cfg.MaxSize))
	if err != nil {
		return nil, reject(reasonMalformed, "%s: %v", u, err)
	}
	var out []Package
	err = ParsePackages(name, in, func(p Package) error {
		if matches(r.src.cfg.Packages, p.Name) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, reject(reasonMalformed, "%s: %s", u, err)
	}
	return out, nil
}

// importDir takes the files the import directory's manifest lists, each checked against
// its listed size and sha256 (and the manifest against its signature when the source
// pins a key).
func (r *checkRun) importDir() error {
	c := r.src.cfg
	root, err := os.OpenRoot(c.Dir)
	if err != nil {
		r.url = "file://" + c.Dir
		return reject(reasonNetwork, "import directory: %v", err)
	}
	defer root.Close()
	readSmall := func(name string, limit int64) ([]byte, error) {
		r.url = "file://" + filepath.Join(c.Dir, name)
		f, err := root.Open(name)
		if err != nil {
			return nil, reject(reasonNetwork, "%s: %v", name, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			return nil, reject(reasonNetwork, "%s: %v", name, err)
		}
		if int64(len(b)) > limit {
			return nil, reject(reasonTooLarge, "%s: more than %d bytes", name, limit)
		}
		return b, nil
	}
	man, err := readSmall(c.Manifest, maxSumsFile)
	if err != nil {
		return err
	}
	how := "sha256 and size listed in " + c.Manifest
	if r.src.keys != nil {
		sig, err := readSmall(c.Manifest+".asc", maxSignature)
		if err != nil {
			return err
		}
		id, err := r.src.keys.VerifyDetached(bytes.NewReader(man), sig, r.now)
		if err != nil {
			return within(c.Manifest+".asc", err)
		}
		how += ", signed by OpenPGP key " + id
	}
	entries, err := ParseManifest(c.Manifest, bytes.NewReader(man))
	if err != nil {
		return reject(reasonMalformed, "%s", err)
	}
	for _, e := range entries {
		if !matches(c.Files, e.Name) {
			continue
		}
		if have, err := r.s.has(r.ctx, c.Name, e.Name, e.SHA256); err != nil {
			return err
		} else if have {
			continue
		}
		if err := r.importFile(root, e, how); err != nil {
			return err
		}
	}
	return nil
}

func (r *checkRun) importFile(root *os.Root, e Entry, how string) error {
	c := r.src.cfg
	u := "file://" + filepath.Join(c.Dir, e.Name)
	r.url = u
	src, err := root.Open(e.Name)
	if err != nil {
		return reject(reasonNetwork, "%s: %v", e.Name, err)
	}
	defer src.Close()
	part := r.s.partPath(c.Name, u)
	dst, err := os.Create(part)
	if err != nil {
		return reject(reasonLocal, "%v", err)
	}
	w := newHashWriter(dst)
	n, err := io.Copy(w, io.LimitReader(readerCtx{r.ctx, src}, e.Size+1))
	cerr := dst.Sync()
	dst.Close()
	switch {
	case err != nil:
		os.Remove(part)
		if r.ctx.Err() != nil {
			return ctxErr(r.ctx)
		}
		return reject(reasonNetwork, "%s: %v", e.Name, err)
	case n != e.Size:
		os.Remove(part)
		return reject(reasonSize, "%s: %d bytes or more, the manifest states %d", e.Name, n, e.Size)
	case w.sum256() != e.SHA256:
		os.Remove(part)
		return reject(reasonChecksum, "%s: sha256 %s, the manifest lists %s", e.Name, w.sum256(), e.SHA256)
	case cerr != nil:
		os.Remove(part)
		return reject(reasonLocal, "%v", cerr)
	}
	return r.stage(offer{name: e.Name, url: u, sha256: e.SHA256, size: e.Size, verification: how},
		&fetched{path: part, size: n, sha256: e.SHA256, sha512: w.sum512()})
}

// readerCtx stops a copy when ctx ends (the check's timeout).
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}

// matches reports whether name matches one of patterns (none: every name).
func matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// resolve finds name next to the file at base.
func resolve(base, name string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", reject(reasonMalformed, "bad URL %q: %v", base, err)
	}
	ref, err := url.Parse(name)
	if err != nil || ref.IsAbs() || ref.Host != "" {
		return "", reject(reasonMalformed, "%s: bad file name %q", base, name)
	}
	return b.ResolveReference(ref).String(), nil
}

// baseName is the last path element of a URL.
func baseName(u string) string {
	if p, err := url.Parse(u); err == nil && p.Path != "" {
		return path.Base(p.Path)
	}
	return path.Base(u)
}
