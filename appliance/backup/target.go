package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/patchgate/patchgate/atomicfile"
)

// Archive names are patchgate-backup-<UTC time>.tar.gz.age, so they sort by time.
const (
	archivePrefix = "patchgate-backup-"
	archiveSuffix = ".tar.gz.age"
	nameTime      = "20060102T150405Z"
)

// Target is a place archives go to. Put must make the archive appear whole or not at
// all; Prune deletes all but the newest keep archives (by name).
type Target interface {
	Name() string
	Put(ctx context.Context, name string, f *os.File, size int64) error
	Prune(ctx context.Context, keep int) error
}

// LocalTarget is a directory (a mounted disk, a NAS share).
type LocalTarget struct{ Dir string }

// Name implements Target.
func (t LocalTarget) Name() string { return "local:" + t.Dir }

// Put copies f into the directory under a temporary name, syncs it and renames it.
func (t LocalTarget) Put(ctx context.Context, name string, f *os.File, size int64) error {
	if err := os.MkdirAll(t.Dir, 0o750); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// perm 0: the archive stays 0600 without a chmod, which some mounted shares refuse.
	return atomicfile.WriteFrom(filepath.Join(t.Dir, name), io.LimitReader(f, size), 0)
}

// Prune implements Target.
func (t LocalTarget) Prune(_ context.Context, keep int) error {
	names, err := t.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range oldest(names, keep) {
		errs = append(errs, os.Remove(filepath.Join(t.Dir, n)))
	}
	return errors.Join(errs...)
}

// List returns the archives in the directory, oldest first.
func (t LocalTarget) List() ([]string, error) {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if isArchiveName(e.Name()) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func isArchiveName(n string) bool {
	return strings.HasPrefix(n, archivePrefix) && strings.HasSuffix(n, archiveSuffix)
}

// oldest returns the names beyond the newest keep, names sorted oldest first.
func oldest(names []string, keep int) []string {
	if len(names) <= keep {
		return nil
	}
	return names[:len(names)-keep]
}

// S3Target is a bucket of an S3-compatible store, reached with minio-go. An upload is
// one PUT (or a multipart upload completed last), so an archive appears whole or not
// at all; a failed multipart upload is aborted.
type S3Target struct {
	Endpoint, Bucket, Prefix, Region string
	AccessKey, SecretKey             string
	Insecure                         bool // plain HTTP
}

// Name implements Target.
func (t *S3Target) Name() string { return "s3:" + t.Endpoint + "/" + t.Bucket + "/" + t.Prefix }

func (t *S3Target) client() (*minio.Client, error) {
	c, err := minio.New(t.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(t.AccessKey, t.SecretKey, ""),
		Secure: !t.Insecure,
		Region: t.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", t.Endpoint, err)
	}
	return c, nil
}

// Put implements Target.
func (t *S3Target) Put(ctx context.Context, name string, f *os.File, size int64) error {
	c, err := t.client()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = c.PutObject(ctx, t.Bucket, t.Prefix+name, io.LimitReader(f, size), size,
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3 put %s/%s%s: %w", t.Bucket, t.Prefix, name, err)
	}
	return nil
}

// List returns the archive names under the prefix, oldest first.
func (t *S3Target) List(ctx context.Context) ([]string, error) {
	c, err := t.client()
	if err != nil {
		return nil, err
	}
	var names []string
	for o := range c.ListObjects(ctx, t.Bucket, minio.ListObjectsOptions{Prefix: t.Prefix}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3 list %s/%s: %w", t.Bucket, t.Prefix, o.Err)
		}
		n := strings.TrimPrefix(o.Key, t.Prefix)
		if isArchiveName(n) && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Prune implements Target.
func (t *S3Target) Prune(ctx context.Context, keep int) error {
	names, err := t.List(ctx)
	if err != nil {
		return err
	}
	c, err := t.client()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range oldest(names, keep) {
		if err := c.RemoveObject(ctx, t.Bucket, t.Prefix+n, minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("s3 remove %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Get opens the archive name for reading.
func (t *S3Target) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	c, err := t.client()
	if err != nil {
		return nil, err
	}
	o, err := c.GetObject(ctx, t.Bucket, t.Prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3 get %s: %w", name, err)
	}
	return o, nil
}
