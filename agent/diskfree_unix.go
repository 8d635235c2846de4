//go:build linux || darwin

package agent

import (
	"errors"

	"golang.org/x/sys/unix"
)

// diskFree is the space an unprivileged process may use on dir's file system.
func diskFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// isDiskFull reports whether a write failed because the file system is full.
func isDiskFull(err error) bool { return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) }
