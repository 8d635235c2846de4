package conf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// FileRef is a file a config key names, which must exist when the config is loaded.
// Sections list theirs with a Files method; the loader checks them all (CheckFiles) so
// that a missing allowlist, root or certificate is reported as FILE:LINE: key, not found
// later by the service that opens it.
type FileRef struct {
	Key  string // the dotted key that names the file (resolver.lists[0].files[1])
	Path string
	// ConfigRelative: a relative Path is relative to the config file's directory (else
	// to the working directory, as the service that opens it reads it).
	ConfigRelative bool
}

// Resolve returns the path the service opens: Path, joined to configDir when it is
// relative to the config file.
func (f FileRef) Resolve(configDir string) string {
	if f.ConfigRelative && !filepath.IsAbs(f.Path) && configDir != "" {
		return filepath.Join(configDir, f.Path)
	}
	return f.Path
}

// CheckFiles adds a problem at the key of each file in refs that is missing, not a
// regular file or not readable. Empty paths are left to the sections' Validate.
func CheckFiles(refs []FileRef, configDir string, ps *Problems) {
	for _, f := range refs {
		if f.Path == "" {
			continue
		}
		path := f.Resolve(configDir)
		fh, err := os.Open(path)
		if err == nil {
			var st fs.FileInfo
			st, err = fh.Stat()
			fh.Close()
			if err == nil && !st.Mode().IsRegular() {
				err = errors.New("not a regular file")
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			ps.Addf(f.Key, "file %s does not exist", path)
		default:
			ps.Addf(f.Key, "file %s: %v", path, unwrapPath(err))
		}
	}
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
