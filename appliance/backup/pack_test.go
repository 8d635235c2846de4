package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
)

// packDir writes dir's files as an archive whose manifest is m with fresh hashes for
// the files m lists, so only what the test changed is out of step (an extra file is
// archived but not listed).
func packDir(w io.Writer, dir string, m *Manifest) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Size: int64(len(b)), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	// Keep the manifest's hashes as they were, except for dropAuditLine's log, whose new
	// hash is right (so the audit check is what catches it).
	for i, f := range m.Files {
		if filepath.Base(f.Path) == "audit.log" {
			b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
			sum := sha256.Sum256(b)
			m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
		}
	}
	mb, _ := json.Marshal(m)
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Size: int64(len(mb)), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
