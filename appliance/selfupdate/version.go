package selfupdate

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/tuf"
)

// Version is an appliance version as the verified TUF targets publish it (make
// image-publish): PREFIX/patchgate-VERSION.update.json, whose custom metadata is the
// bundle's manifest, beside the two files the manifest names, each listed with the
// length and SHA-256 the manifest gives.
type Version struct {
	Version  string            `json:"version"`
	Bytes    int64             `json:"bytes"` // both files, as delivered
	Manifest abupdate.Manifest `json:"-"`
	Paths    []string          `json:"paths"` // target paths: manifest, root, UKI
	Root     tuf.TargetInfo    `json:"-"`
	UKI      tuf.TargetInfo    `json:"-"`
}

// ManifestPath is the target path of version's manifest under prefix.
func ManifestPath(prefix, version string) string {
	return prefix + "patchgate-" + version + ".update.json"
}

// resolve reads the version published at manifestPath from verified targets (lookup
// returns what the verified metadata says of a path) and checks that its files are
// listed as its manifest describes them.
func resolve(prefix, manifestPath string, lookup func(path string) (tuf.TargetInfo, error)) (Version, error) {
	mt, err := lookup(manifestPath)
	if err != nil {
		return Version{}, err
	}
	if len(mt.Custom) == 0 {
		return Version{}, fmt.Errorf("%s: no manifest in its custom metadata", manifestPath)
	}
	m, err := abupdate.ParseManifest(mt.Custom)
	if err != nil {
		return Version{}, fmt.Errorf("%s: custom metadata: %w", manifestPath, err)
	}
	if want := ManifestPath(prefix, m.Version); want != manifestPath {
		return Version{}, fmt.Errorf("%s: its manifest is of version %s (want it at %s)", manifestPath, m.Version, want)
	}
	v := Version{Version: m.Version, Manifest: m, Paths: []string{manifestPath}}
	for _, f := range []struct {
		file abupdate.File
		dst  *tuf.TargetInfo
	}{{m.Root, &v.Root}, {m.UKI, &v.UKI}} {
		p := prefix + f.file.Name
		t, err := lookup(p)
		if err != nil {
			return Version{}, fmt.Errorf("%s: %w", manifestPath, err)
		}
		sum, ok := t.SHA256()
		switch {
		case !ok:
			return Version{}, fmt.Errorf("%s: target %s lists no sha256", manifestPath, p)
		case t.Length != f.file.Length || sum != f.file.SHA256:
			return Version{}, fmt.Errorf("%s: target %s is %d bytes sha256 %s, the manifest says %d bytes sha256 %s",
				manifestPath, p, t.Length, sum, f.file.Length, f.file.SHA256)
		}
		*f.dst = t
		v.Paths = append(v.Paths, p)
		v.Bytes += t.Length
	}
	return v, nil
}

// errNotListed is what a lookup in a listing returns for a path it does not hold.
var errNotListed = errors.New("not among the verified targets")
