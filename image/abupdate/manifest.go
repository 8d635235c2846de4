package abupdate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Manifest describes an update bundle, as the image build writes it beside the files
// (patchgate-VERSION.update.json) and as it travels in the TUF targets' custom metadata:
// a gzip-compressed root filesystem image and a UKI, each with the length and SHA-256 of
// the file delivered, and for the root also of the image after decompression.
type Manifest struct {
	Version string `json:"version"`
	Root    File   `json:"root"`
	UKI     File   `json:"uki"`
}

// File is one file of a bundle.
type File struct {
	Name      string `json:"name"`
	Length    int64  `json:"length"`
	SHA256    string `json:"sha256"`
	RawLength int64  `json:"raw_length,omitempty"` // root only: after gunzip
	RawSHA256 string `json:"raw_sha256,omitempty"`
}

// maxManifest bounds the manifest read; real ones are a few hundred bytes.
const maxManifest = 64 << 10

// ParseManifest decodes a manifest strictly (unknown fields are errors) and checks every
// field, so that Install never sees a name with a path in it or a malformed hash.
func ParseManifest(data []byte) (Manifest, error) {
	if len(data) > maxManifest {
		return Manifest{}, fmt.Errorf("abupdate: manifest: %d bytes, want at most %d", len(data), maxManifest)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("abupdate: manifest: %w", err)
	}
	if dec.More() {
		return Manifest{}, errors.New("abupdate: manifest: data after the JSON object")
	}
	var problems []string
	if err := CheckVersion(m.Version); err != nil {
		problems = append(problems, "version: "+strings.TrimPrefix(err.Error(), "abupdate: "))
	}
	check := func(key string, f File, raw bool) {
		if f.Name == "" || f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") || strings.ContainsAny(f.Name, `/\`) {
			problems = append(problems, fmt.Sprintf("%s.name: want a plain file name, got %q", key, f.Name))
		}
		if f.Length <= 0 {
			problems = append(problems, fmt.Sprintf("%s.length: must be positive, got %d", key, f.Length))
		}
		if !isSHA256(f.SHA256) {
			problems = append(problems, fmt.Sprintf("%s.sha256: want 64 hex digits, got %q", key, f.SHA256))
		}
		if raw {
			if f.RawLength <= 0 {
				problems = append(problems, fmt.Sprintf("%s.raw_length: must be positive, got %d", key, f.RawLength))
			}
			if !isSHA256(f.RawSHA256) {
				problems = append(problems, fmt.Sprintf("%s.raw_sha256: want 64 hex digits, got %q", key, f.RawSHA256))
			}
		} else if f.RawLength != 0 || f.RawSHA256 != "" {
			problems = append(problems, key+": raw_length and raw_sha256 are for the root only")
		}
	}
	check("root", m.Root, true)
	check("uki", m.UKI, false)
	if len(problems) > 0 {
		return Manifest{}, fmt.Errorf("abupdate: manifest: %s", strings.Join(problems, "; "))
	}
	return m, nil
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// countingHash hashes and counts what passes through it.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// InstallBundle installs the bundle m describes from the files in dir: the root is
// decompressed while it streams into the slot, and both the delivered file and the
// decompressed image are checked against the manifest.
func (u *Updater) InstallBundle(ctx context.Context, dir string, m Manifest) error {
	rootFile, err := os.Open(filepath.Join(dir, m.Root.Name))
	if err != nil {
		return fmt.Errorf("abupdate: install %s: %w", m.Version, err)
	}
	defer rootFile.Close()
	ukiFile, err := os.Open(filepath.Join(dir, m.UKI.Name))
	if err != nil {
		return fmt.Errorf("abupdate: install %s: %w", m.Version, err)
	}
	defer ukiFile.Close()
	return u.InstallManifest(ctx, m, rootFile, ukiFile)
}

// InstallManifest installs the bundle m describes from its two files' bytes as
// delivered: root, the gzip-compressed root image, is decompressed while it streams into
// the slot; both it and the decompressed image, and uki, are checked against m.
func (u *Updater) InstallManifest(ctx context.Context, m Manifest, root, uki io.Reader) error {
	outer := &countingHash{r: io.LimitReader(root, m.Root.Length+1), h: sha256.New()}
	gz, err := gzip.NewReader(outer)
	if err != nil {
		return fmt.Errorf("abupdate: install %s: root: %w", m.Version, err)
	}
	gz.Multistream(false)
	// The outer hash is checked before the UKI is written: Install reads the root fully
	// first, so check it through a reader that fails at EOF on a mismatch.
	checked := &outerCheck{r: gz, outer: outer, want: m.Root}
	return u.Install(ctx, m.Version,
		Artifact{R: checked, Length: m.Root.RawLength, SHA256: m.Root.RawSHA256},
		Artifact{R: uki, Length: m.UKI.Length, SHA256: m.UKI.SHA256})
}

// outerCheck passes the decompressed root through and, at its end, drains the rest of
// the compressed file and checks the compressed file's length and hash too.
type outerCheck struct {
	r     io.Reader
	outer *countingHash
	want  File
	done  bool
}

func (o *outerCheck) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if errors.Is(err, io.EOF) && !o.done {
		o.done = true
		if _, derr := io.Copy(io.Discard, o.outer); derr != nil {
			return n, derr
		}
		if o.outer.n != o.want.Length {
			return n, fmt.Errorf("compressed root: got %d bytes, want %d", o.outer.n, o.want.Length)
		}
		if got := hex.EncodeToString(o.outer.h.Sum(nil)); got != o.want.SHA256 {
			return n, fmt.Errorf("compressed root: sha256 %s, want %s", got, o.want.SHA256)
		}
	}
	return n, err
}
