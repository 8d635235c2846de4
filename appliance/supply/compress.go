package supply

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Compressed forms of a Debian index, in the order they are tried: smallest download
// first. Archives list the hashes of the uncompressed Packages even when they serve
// only Packages.xz and Packages.gz, so a form the mirror does not serve (404) is
// skipped for the next one.
var indexForms = []string{".xz", ".gz", ""}

// maxXZDict bounds the dictionary an xz stream may ask the decoder to allocate; xz -9
// uses 64 MiB, Debian's archives 8 MiB.
const maxXZDict = 64 << 20

// decompress returns the decompressed contents of r, an index named name whose suffix
// (.xz, .gz or none) says how it is compressed, cut after limit bytes (the caller
// refuses what is cut as malformed when the parse fails).
func decompress(name string, r io.Reader, limit int64) (io.Reader, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return io.LimitReader(zr, limit), nil
	case strings.HasSuffix(name, ".xz"):
		br := bufio.NewReaderSize(r, 12+1024)
		if err := checkXZDict(br); err != nil {
			return nil, err
		}
		zr, err := xz.ReaderConfig{DictCap: 1 << 20}.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.LimitReader(zr, limit), nil
	}
	return io.LimitReader(r, limit), nil
}

// checkXZDict refuses an xz stream whose first block asks for a dictionary larger than
// maxXZDict, before the decoder allocates it. (The bytes were already checked against
// the signed InRelease; this bounds what a mistake or a fuzzer can make us allocate.)
// Anything else malformed is left for the decoder to report.
func checkXZDict(br *bufio.Reader) error {
	head, _ := br.Peek(12 + 1024)
	if len(head) < 14 || head[12] == 0 { // too short, or no block (the index follows)
		return nil
	}
	hdr := head[12:]
	size := (int(hdr[0]) + 1) * 4
	if len(hdr) < size {
		return nil
	}
	hdr, flags := hdr[2:size-4], hdr[1] // without the size, flags and CRC32
	skip := func() bool {               // one varint
		_, n := binary.Uvarint(hdr)
		if n <= 0 {
			return false
		}
		hdr = hdr[n:]
		return true
	}
	if flags&0x40 != 0 && !skip() || flags&0x80 != 0 && !skip() {
		return nil
	}
	for range int(flags&3) + 1 {
		id, n := binary.Uvarint(hdr)
		if n <= 0 {
			return nil
		}
		hdr = hdr[n:]
		props, n := binary.Uvarint(hdr)
		if n <= 0 || uint64(len(hdr)-n) < props {
			return nil
		}
		hdr = hdr[n:]
		if id == 0x21 && props == 1 { // LZMA2: its one property byte is the dictionary size
			dict, err := lzma.DecodeDictCap(hdr[0])
			if err == nil && dict > maxXZDict {
				return fmt.Errorf("xz: a %d MiB dictionary, more than the %d MiB allowed", dict>>20, maxXZDict>>20)
			}
		}
		hdr = hdr[props:]
	}
	return nil
}
