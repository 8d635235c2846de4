// Package abupdatetest makes stand-ins for the two files of an appliance version, for
// tests of abupdate and of what installs through it: a UKI with only the .cmdline
// section abupdate reads, and a root image with only an ext4 superblock's magic and
// UUID. (Real ones need the systemd stub, a kernel and mkfs.ext4; the image boot test
// in test/image uses real ones.)
package abupdatetest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// UKI returns a minimal PE file whose one section, .cmdline, holds cmdline.
func UKI(cmdline string) []byte {
	var b bytes.Buffer
	dos := make([]byte, 0x40)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 0x40)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	fh := make([]byte, 20)
	binary.LittleEndian.PutUint16(fh[0:], 0x8664) // machine: amd64
	binary.LittleEndian.PutUint16(fh[2:], 1)      // one section
	b.Write(fh)                                   // no optional header
	dataOff := uint32(b.Len() + 40)
	sh := make([]byte, 40)
	copy(sh, ".cmdline")
	binary.LittleEndian.PutUint32(sh[8:], uint32(len(cmdline)))  // virtual size
	binary.LittleEndian.PutUint32(sh[16:], uint32(len(cmdline))) // raw size
	binary.LittleEndian.PutUint32(sh[20:], dataOff)
	b.Write(sh)
	b.WriteString(cmdline)
	return b.Bytes()
}

// ext4 superblock: at 1024 bytes into the filesystem, magic at 0x38, UUID at 0x68.
const (
	sbOffset   = 1024
	sbMagicOff = 0x38
	sbUUIDOff  = 0x68
	ext4Magic  = 0xEF53
)

// Root returns 64 KiB that read as an ext4 filesystem with the given UUID, with a
// pattern after the superblock so that two roots differ in more than their UUID.
func Root(uuid string) []byte {
	img := make([]byte, 64<<10)
	binary.LittleEndian.PutUint16(img[sbOffset+sbMagicOff:], ext4Magic)
	raw, _ := hex.DecodeString(strings.ReplaceAll(uuid, "-", ""))
	copy(img[sbOffset+sbUUIDOff:], raw)
	for i := 8192; i < len(img); i++ {
		img[i] = byte(i)
	}
	return img
}
