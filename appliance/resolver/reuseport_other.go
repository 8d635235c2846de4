//go:build !linux

package resolver

import "syscall"

// reusePortSupported says whether listenBoth opens one UDP socket per reader: not here,
// where every reader shares one socket.
const reusePortSupported = false

func setReusePort(network, address string, c syscall.RawConn) error { return nil }
