package supply

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/conf"
)

// Source kinds, the values of Source.Kind.
const (
	KindURL     = "url"     // one file with a pinned sha256, or the files a SHA256SUMS lists
	KindOpenPGP = "openpgp" // a file, or a SHA256SUMS, with a detached signature by a pinned key
	KindDebian  = "debian"  // a Debian/Ubuntu archive: signed InRelease, Packages, .deb
	KindImport  = "import"  // a watched directory with a MANIFEST (offline sites, USB media)
)

var kinds = []string{KindURL, KindOpenPGP, KindDebian, KindImport}

// Defaults of a source's optional keys.
const (
	DefaultInterval       = 6 * time.Hour
	DefaultImportInterval = time.Minute
	DefaultTimeout        = 30 * time.Minute
	DefaultMaxSize        = 4 << 30
	DefaultManifest       = "MANIFEST"
)

// Source is one vendor feed of the sources section. Which keys apply depends on Kind;
// Validate says which are missing or out of place.
type Source struct {
	// Name names the source in candidates, the API, audit records and health problems.
	Name string `yaml:"name"`
	// Kind is url, openpgp, debian or import.
	Kind string `yaml:"kind"`
	// URL is the file (url, openpgp) or the archive root (debian, e.g.
	// https://deb.debian.org/debian).
	URL string `yaml:"url"`
	// Interval is how often the source is checked (default 6h; 1m for import).
	Interval conf.Duration `yaml:"interval"`
	// Timeout bounds one check, every download of it included (default 30m).
	Timeout conf.Duration `yaml:"timeout"`
	// MaxSize bounds one downloaded file whose size the vendor does not state
	// (default 4GiB).
	MaxSize conf.ByteSize `yaml:"max_size"`

	// SHA256 pins the file at URL (url kind).
	SHA256 string `yaml:"sha256"`
	// ChecksumsURL is a SHA256SUMS-style file listing the files to take; they are found
	// next to it (url and openpgp kinds).
	ChecksumsURL string `yaml:"checksums_url"`
	// Files are the names or patterns (path.Match) taken from the checksum file or the
	// import manifest (empty: every file listed).
	Files []string `yaml:"files"`

	// SignatureURL is the detached OpenPGP signature (armored or binary) over URL or,
	// with ChecksumsURL, over the checksum file (openpgp kind; default the signed URL
	// plus ".asc"). An import with a key expects MANIFEST.asc.
	SignatureURL string `yaml:"signature_url"`
	// Key is the vendor's pinned OpenPGP public key, armored, inline...
	Key string `yaml:"key"`
	// KeyFile ...or in a file (relative paths: next to the config file).
	KeyFile string `yaml:"key_file"`

	// Suite, Components, Architectures and Packages select from a Debian archive:
	// dists/SUITE/InRelease, then COMPONENT/binary-ARCH/Packages, then the packages
	// whose names match one of Packages (names or path.Match patterns).
	Suite         string   `yaml:"suite"`
	Components    []string `yaml:"components"`
	Architectures []string `yaml:"architectures"`
	Packages      []string `yaml:"packages"`

	// Dir is the watched import directory; Manifest is the name of its manifest in it
	// (default MANIFEST: lines of "SHA256 SIZE NAME").
	Dir      string `yaml:"dir"`
	Manifest string `yaml:"manifest"`

	// Install are the install instructions, per OS (linux, windows, darwin), that a
	// release made from one of this source's candidates carries in its signed target
	// unless the release request gives its own (agentapi.Instructions).
	Install map[string]agentapi.Step `yaml:"install"`
	// DownloadWindow, when set, is the time of day scheduled checks may download in;
	// see Window.
	DownloadWindow *Window `yaml:"download_window"`
}

// Section is the sources section: the vendor feeds. The zero value (no sources) is the
// default.
type Section []Source

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks the sources section: every source's keys for its kind, all problems
// at once.
func (s Section) Validate(key string, ps *conf.Problems) {
	seen := map[string]bool{}
	for i, src := range s {
		k := conf.Index(key, i)
		if checkName(k, src.Name, ps) && seen[src.Name] {
			ps.Addf(k+".name", "source %q listed twice", src.Name)
		}
		seen[src.Name] = true
		src.validate(k, ps)
	}
}

// checkName reports whether a source's name is valid, adding a problem at k.name if not.
func checkName(k, name string, ps *conf.Problems) bool {
	if !nameRE.MatchString(name) {
		ps.Addf(k+".name", "must be 1-63 lowercase letters, digits, '.', '_' or '-', got %q", name)
		return false
	}
	return true
}

func (s Source) validate(k string, ps *conf.Problems) {
	if s.Interval != 0 && s.Interval.D() < time.Minute {
		ps.Addf(k+".interval", "must be at least 1m, got %s", s.Interval.D())
	}
	if s.Timeout != 0 && s.Timeout.D() < 10*time.Second {
		ps.Addf(k+".timeout", "must be at least 10s, got %s", s.Timeout.D())
	}
	if s.MaxSize < 0 {
		ps.Addf(k+".max_size", "must not be negative, got %s", s.MaxSize)
	}
	for j, p := range slices.Concat(s.Files, s.Packages) {
		if _, err := path.Match(p, ""); err != nil {
			field := ".files"
			if j >= len(s.Files) {
				field, j = ".packages", j-len(s.Files)
			}
			ps.Addf(conf.Index(k+field, j), "bad pattern %q: %v", p, err)
		}
	}
	if s.Key != "" && s.KeyFile != "" {
		ps.Addf(k+".key_file", "give key or key_file, not both")
	}
	hasKey := s.Key != "" || s.KeyFile != ""
	if s.SHA256 != "" && !hexRE.MatchString(s.SHA256) {
		ps.Addf(k+".sha256", "must be 64 lowercase hex digits, got %q", s.SHA256)
	}
	checkURL := func(field, v string, required bool) {
		if v == "" {
			if required {
				ps.Addf(k+"."+field, "required for kind %s", s.Kind)
			}
			return
		}
		if !conf.IsHTTPURL(v) {
			ps.Addf(k+"."+field, "must be an http or https URL, got %q", v)
		}
	}
	not := func(field string, set bool) {
		if set {
			ps.Addf(k+"."+field, "does not apply to kind %s", s.Kind)
		}
	}
	// oneOf wants exactly one of fields a and b set and returns it: neither is a problem
	// at a (need says what the kind needs), both one at b; "" then.
	oneOf := func(a, b string, hasA, hasB bool, need string) string {
		switch {
		case !hasA && !hasB:
			ps.Addf(k+"."+a, "%s", need)
		case hasA && hasB:
			ps.Addf(k+"."+b, "give %s or %s, not both", a, b)
		case hasA:
			return a
		default:
			return b
		}
		return ""
	}
	debianOnly := func() {
		not("suite", s.Suite != "")
		not("components", len(s.Components) > 0)
		not("architectures", len(s.Architectures) > 0)
		not("packages", len(s.Packages) > 0)
	}
	switch s.Kind {
	case KindURL:
		checkURL("checksums_url", s.ChecksumsURL, false)
		switch oneOf("sha256", "checksums_url", s.SHA256 != "", s.ChecksumsURL != "", "kind url needs a pinned sha256 or a checksums_url") {
		case "sha256":
			checkURL("url", s.URL, true)
			not("files", len(s.Files) > 0)
		case "checksums_url":
			not("url", s.URL != "")
		}
		not("signature_url", s.SignatureURL != "")
		not("key", hasKey)
		not("dir", s.Dir != "")
		debianOnly()
	case KindOpenPGP:
		if !hasKey {
			ps.Addf(k+".key", "kind openpgp needs the vendor's pinned key (key or key_file)")
		}
		checkURL("signature_url", s.SignatureURL, false)
		switch oneOf("url", "checksums_url", s.URL != "", s.ChecksumsURL != "", "kind openpgp needs url (a signed file) or checksums_url (a signed checksum file)") {
		case "url":
			checkURL("url", s.URL, true)
			not("files", len(s.Files) > 0)
		case "checksums_url":
			checkURL("checksums_url", s.ChecksumsURL, true)
		}
		not("sha256", s.SHA256 != "")
		not("dir", s.Dir != "")
		debianOnly()
	case KindDebian:
		checkURL("url", s.URL, true)
		if !hasKey {
			ps.Addf(k+".key", "kind debian needs the archive's pinned signing key (key or key_file)")
		}
		if s.Suite == "" || strings.Contains(s.Suite, "..") || strings.ContainsAny(s.Suite, "?#") {
			ps.Addf(k+".suite", "must name the suite, e.g. bookworm or noble-updates, got %q", s.Suite)
		}
		if len(s.Components) == 0 {
			ps.Addf(k+".components", "must list at least one component, e.g. main")
		}
		if len(s.Architectures) == 0 {
			ps.Addf(k+".architectures", "must list at least one architecture, e.g. amd64")
		}
		if len(s.Packages) == 0 {
			ps.Addf(k+".packages", "must list the package names or patterns to take")
		}
		for field, vals := range map[string][]string{"components": s.Components, "architectures": s.Architectures} {
			for j, v := range vals {
				if v == "" || strings.Contains(v, "..") || strings.ContainsAny(v, "?#") {
					ps.Addf(conf.Index(k+"."+field, j), "bad value %q", v)
				}
			}
		}
		not("sha256", s.SHA256 != "")
		not("checksums_url", s.ChecksumsURL != "")
		not("signature_url", s.SignatureURL != "")
		not("files", len(s.Files) > 0)
		not("dir", s.Dir != "")
	case KindImport:
		if s.Dir == "" {
			ps.Addf(k+".dir", "required for kind import")
		}
		if s.Manifest != "" && (strings.Contains(s.Manifest, "/") || s.Manifest == "." || s.Manifest == "..") {
			ps.Addf(k+".manifest", "must be a file name in dir, got %q", s.Manifest)
		}
		not("url", s.URL != "")
		not("sha256", s.SHA256 != "")
		not("checksums_url", s.ChecksumsURL != "")
		not("signature_url", s.SignatureURL != "")
		debianOnly()
	case "authenticode", "windows":
		ps.Addf(k+".kind", "no maintained Go library verifies Authenticode against a pinned publisher: use kind url with a pinned sha256 (see appliance/supply/README.md)")
	default:
		ps.Addf(k+".kind", "must be one of %s, got %q", strings.Join(kinds, ", "), s.Kind)
	}
	if s.Kind != KindImport {
		not("manifest", s.Manifest != "")
	}
	if len(s.Install) > 0 {
		if err := (agentapi.Instructions{Install: s.Install}).Validate(); err != nil {
			for _, e := range strings.Split(err.Error(), "\n") {
				ps.Addf(k+".install", "%s", strings.TrimPrefix(e, "install."))
			}
		}
	}
	if s.DownloadWindow != nil {
		s.DownloadWindow.validate(k+".download_window", ps)
	}
}

// withDefaults fills the optional keys a config left out.
func (s Source) withDefaults() Source {
	if s.Interval == 0 {
		s.Interval = conf.Duration(DefaultInterval)
		if s.Kind == KindImport {
			s.Interval = conf.Duration(DefaultImportInterval)
		}
	}
	if s.Timeout == 0 {
		s.Timeout = conf.Duration(DefaultTimeout)
	}
	if s.MaxSize == 0 {
		s.MaxSize = DefaultMaxSize
	}
	if s.Manifest == "" && s.Kind == KindImport {
		s.Manifest = DefaultManifest
	}
	if s.Kind == KindOpenPGP && s.SignatureURL == "" {
		s.SignatureURL = s.URL + ".asc"
		if s.ChecksumsURL != "" {
			s.SignatureURL = s.ChecksumsURL + ".asc"
		}
	}
	return s
}

// String is the source as "name (kind)" for messages.
func (s Source) String() string { return fmt.Sprintf("%s (%s)", s.Name, s.Kind) }
