package resolver

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported says whether listenBoth opens one UDP socket per reader.
const reusePortSupported = true

// setReusePort sets SO_REUSEPORT on a socket before it is bound (a net.ListenConfig
// Control function).
func setReusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
