package fingerprint

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/patchgate/patchgate/netscan"
)

// The vendor table comes from the IEEE registry as Debian's ieee-data
// package ships it (apt-get install ieee-data; the IEEE lists are public,
// Debian's packaging is WTFPL-2). Regenerate with `go generate`.
//
//go:generate go run ./internal/ouigen -o oui.bin.gz /usr/share/ieee-data
//go:embed oui.bin.gz
var ouiData []byte

type ouiTable struct {
	vendors []string
	// blocks[0] holds 24-bit prefixes, [1] 28-bit, [2] 36-bit.
	blocks [3]ouiBlock
}

type ouiBlock struct {
	prefixes []uint64
	vendor   []uint32
}

var loadOUI = sync.OnceValues(func() (*ouiTable, error) { return parseOUI(ouiData) })

func parseOUI(data []byte) (*ouiTable, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("fingerprint: oui table: %w", err)
	}
	r := bufio.NewReader(zr)
	magic := make([]byte, 6)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "PGOUI1" {
		return nil, errors.New("fingerprint: oui table: bad magic")
	}
	uv := func() (uint64, error) { return binary.ReadUvarint(r) }
	n, err := uv()
	if err != nil || n > 1<<20 {
		return nil, fmt.Errorf("fingerprint: oui table: vendor count: %v", err)
	}
	t := &ouiTable{vendors: make([]string, n)}
	for i := range t.vendors {
		l, err := uv()
		if err != nil || l > 512 {
			return nil, fmt.Errorf("fingerprint: oui table: vendor %d: %v", i, err)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("fingerprint: oui table: vendor %d: %w", i, err)
		}
		t.vendors[i] = string(b)
	}
	for bi := range t.blocks {
		c, err := uv()
		if err != nil || c > 1<<22 {
			return nil, fmt.Errorf("fingerprint: oui table: block %d count: %v", bi, err)
		}
		blk := ouiBlock{prefixes: make([]uint64, c), vendor: make([]uint32, c)}
		var prev uint64
		for i := range blk.prefixes {
			d, err1 := uv()
			v, err2 := uv()
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("fingerprint: oui table: block %d entry %d: %w", bi, i, err)
			}
			if v >= n {
				return nil, fmt.Errorf("fingerprint: oui table: block %d entry %d: vendor %d out of range", bi, i, v)
			}
			prev += d
			blk.prefixes[i], blk.vendor[i] = prev, uint32(v)
		}
		t.blocks[bi] = blk
	}
	return t, nil
}

// Vendor returns the organisation the IEEE assigned m's block to, with
// legal suffixes cut ("Zebra Technologies"), looking at 36-, then 28-, then
// 24-bit blocks. It returns "" for a locally administered, group or zero
// address, or one the registry does not list. Safe for concurrent use.
func Vendor(m netscan.MAC) string {
	if !m.Unicast() || m.LocallyAdministered() {
		return ""
	}
	t, err := loadOUI()
	if err != nil {
		return "" // the embedded table is checked by a test
	}
	v := uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
	for bi, shift := range [3]uint{12, 20, 24} { // 36-bit keeps 48-12 bits, 28-bit 48-20, 24-bit 48-24
		blk := t.blocks[2-bi]
		if i, ok := slices.BinarySearch(blk.prefixes, v>>shift); ok {
			return t.vendors[blk.vendor[i]]
		}
	}
	return ""
}
