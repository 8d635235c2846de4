// Package atomicfile writes files so that a reader, and the file system after a crash,
// sees either the old content or the new one, never a part of it: the data goes to a
// temporary file beside the target, is synced, renamed over it, and the directory is
// synced. It imports nothing else of the project's, so every package may use it.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces path with data, with permissions perm (0: as in WriteWith).
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, writeData(data), nil)
}

// WriteOwned is Write with the file owned by uid:gid before it appears: for a root
// helper leaving a file in a directory an unprivileged service reads and removes.
func WriteOwned(path string, data []byte, perm os.FileMode, uid, gid int) error {
	return write(path, perm, writeData(data), func(f *os.File) error { return f.Chown(uid, gid) })
}

// WriteFrom replaces path with what r yields, streamed (an archive, an image), with
// permissions perm as in WriteWith.
func WriteFrom(path string, r io.Reader, perm os.FileMode) error {
	return WriteWith(path, perm, func(f *os.File) error {
		_, err := io.Copy(f, r)
		return err
	})
}

// WriteWith replaces path with what fill writes to f, a temporary file beside it. fill
// may also read back what it wrote (from f.Name()) to check it: when it fails, path stays
// as it was. perm 0 leaves the file as created, 0600, without a chmod, for file systems
// that refuse one (FAT, as on an EFI system partition, or some network shares).
func WriteWith(path string, perm os.FileMode, fill func(f *os.File) error) error {
	return write(path, perm, fill, nil)
}

func writeData(data []byte) func(*os.File) error {
	return func(f *os.File) error {
		_, err := f.Write(data)
		return err
	}
}

func write(path string, perm os.FileMode, fill, prepare func(*os.File) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	err = fill(f)
	if err == nil && perm != 0 {
		err = f.Chmod(perm)
	}
	if err == nil && prepare != nil {
		err = prepare(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir syncs a directory, making the renames and removals in it durable. On Windows,
// which cannot flush a directory handle (NTFS journals the rename itself), it does
// nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
