package abupdate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ext4 superblock: 1024 bytes in; magic at 0x38, UUID at 0x68.
const (
	sbOffset   = 1024
	sbMagicOff = 0x38
	sbUUIDOff  = 0x68
	ext4Magic  = 0xEF53
)

// FSUUID returns the ext2/3/4 filesystem UUID at the start of the slot at path (a block
// device or a file), lower-case with dashes, or "" when the slot holds no filesystem.
func FSUUID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("abupdate: slot: %w", err)
	}
	defer f.Close()
	sb := make([]byte, 0x78)
	if _, err := f.ReadAt(sb, sbOffset); err != nil {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", fmt.Errorf("abupdate: slot %s: %w", path, err)
	}
	if binary.LittleEndian.Uint16(sb[sbMagicOff:]) != ext4Magic {
		return "", nil
	}
	u := sb[sbUUIDOff : sbUUIDOff+16]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// wipe zeroes the superblock area so a half-written slot holds no filesystem.
func wipe(f *os.File) error {
	_, err := f.WriteAt(make([]byte, 4096), 0)
	if err == nil {
		err = f.Sync()
	}
	return err
}
