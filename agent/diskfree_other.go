//go:build !linux && !darwin && !windows

package agent

import (
	"errors"
	"syscall"
)

// diskFree is not known on this OS: instructions asking for free space are refused.
func diskFree(string) (uint64, error) { return 0, errors.New("not measured on this OS") }

// isDiskFull reports whether a write failed because the file system is full.
func isDiskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
