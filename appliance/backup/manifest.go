package backup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format is the archive layout this package writes and reads.
const Format = 1

// ManifestName is the archive's last member.
const ManifestName = "manifest.json"

// Member prefixes: the state directory, the audit directory when it lies outside the
// state directory, and the config file.
const (
	prefixState  = "state/"
	prefixAudit  = "audit/"
	prefixConfig = "config/"
)

// Manifest describes one archive: every member with its size and SHA-256, every
// database table with its row count and digest, the schema version of every component
// and what was left out (the cache's objects: counted, and the pinned targets named).
type Manifest struct {
	Format           int            `json:"format"`
	ApplianceVersion string         `json:"appliance_version"`
	CreatedAt        time.Time      `json:"created_at"`
	Schemas          map[string]int `json:"schemas"`
	Files            []File         `json:"files"`
	Tables           []Table        `json:"tables"`
	AuditRecords     uint64         `json:"audit_records"`
	CacheObjects     int            `json:"cache_objects"` // objects in the cache, not in the archive
	CacheBytes       int64          `json:"cache_bytes"`
	Pinned           []Pin          `json:"pinned,omitempty"` // targets pinned when the backup was made
}

// File is one archive member.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Table is one database table of the snapshot: its rows and the SHA-256 over them in
// order (see TableRows).
type Table struct {
	Name   string `json:"name"`
	Rows   int    `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Pin is a target the cache protected from eviction: it refills from upstream.
type Pin struct {
	Repo string `json:"repo"`
	Path string `json:"path"`
}

// maxManifest bounds the manifest member.
const maxManifest = 64 << 20

// ParseManifest decodes and checks a manifest: known format, member paths clean and
// unique, hashes well-formed, sizes not negative.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: not a backup manifest: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("manifest: trailing data after the manifest")
	}
	if m.Format != Format {
		return nil, fmt.Errorf("manifest: format %d, this binary reads format %d", m.Format, Format)
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if err := checkMember(f.Path); err != nil {
			return nil, fmt.Errorf("manifest: files[%d]: %v", i, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("manifest: files[%d]: %s listed twice", i, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("manifest: files[%d] %s: bad size or sha256", i, f.Path)
		}
	}
	for c, v := range m.Schemas {
		if v < 0 {
			return nil, fmt.Errorf("manifest: schemas.%s: negative version %d", c, v)
		}
	}
	return &m, nil
}

// checkMember accepts a member path under one of the known prefixes, clean and
// relative.
func checkMember(p string) error {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || strings.Contains(p, "\x00") || strings.Contains(p, "\\") {
		return fmt.Errorf("member %q is not a clean relative path", p)
	}
	if !strings.HasPrefix(p, prefixState) && !strings.HasPrefix(p, prefixAudit) && !strings.HasPrefix(p, prefixConfig) {
		return fmt.Errorf("member %q is outside state/, audit/ and config/", p)
	}
	return nil
}

// NewerSchemas lists the components whose schema in m is newer than known (this
// binary's), as "component N > M".
func (m *Manifest) NewerSchemas(known map[string]int) []string {
	var out []string
	for c, v := range m.Schemas {
		if k, ok := known[c]; !ok || v > k {
			out = append(out, c+" "+strconv.Itoa(v)+" > "+strconv.Itoa(k))
		}
	}
	slices.Sort(out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// errorf makes errors prefixed with the package's operation name.
func errorf(format string, args ...any) error { return fmt.Errorf("backup: "+format, args...) }
