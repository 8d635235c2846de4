// Command ouigen builds the MAC vendor table of netscan/fingerprint from the
// IEEE registry as Debian's ieee-data package ships it (oui.csv: MA-L,
// 24-bit; mam.csv: MA-M, 28-bit; oui36.csv: MA-S, 36-bit). The IEEE lists
// are public; Debian's packaging is under the WTFPL-2.
//
// Output: a gzip stream of
//
//	"PGOUI1"
//	uvarint vendor count, then each vendor as uvarint length + UTF-8 name
//	for each of the 24-, 28- and 36-bit tables:
//	  uvarint entry count, then per entry (prefixes ascending)
//	  uvarint prefix delta from the previous prefix, uvarint vendor index
//
// Usage: go run ./internal/ouigen -o oui.bin.gz /usr/share/ieee-data
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

type entry struct {
	prefix uint64
	vendor string
}

func main() {
	out := flag.String("o", "oui.bin.gz", "output file")
	flag.Parse()
	dir := "/usr/share/ieee-data"
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	if err := run(dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ouigen:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	files := []struct {
		name     string
		registry string
		hexLen   int
	}{{"oui.csv", "MA-L", 6}, {"mam.csv", "MA-M", 7}, {"oui36.csv", "MA-S", 9}}
	vendors := map[string]int{}
	var names []string
	var tables [3][]entry
	for i, f := range files {
		es, err := read(filepath.Join(dir, f.name), f.registry, f.hexLen)
		if err != nil {
			return err
		}
		tables[i] = es
		for _, e := range es {
			if _, ok := vendors[e.vendor]; !ok {
				vendors[e.vendor] = -1
				names = append(names, e.vendor)
			}
		}
	}
	slices.Sort(names)
	for i, n := range names {
		vendors[n] = i
	}
	var raw bytes.Buffer
	raw.WriteString("PGOUI1")
	put := func(v uint64) { raw.Write(binary.AppendUvarint(nil, v)) }
	put(uint64(len(names)))
	for _, n := range names {
		put(uint64(len(n)))
		raw.WriteString(n)
	}
	for _, es := range tables {
		put(uint64(len(es)))
		var prev uint64
		for _, e := range es {
			put(e.prefix - prev)
			prev = e.prefix
			put(uint64(vendors[e.vendor]))
		}
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}
	fmt.Printf("ouigen: %d vendors, %d/%d/%d prefixes, %d bytes raw, %d gzipped\n",
		len(names), len(tables[0]), len(tables[1]), len(tables[2]), raw.Len(), gz.Len())
	return os.WriteFile(out, gz.Bytes(), 0o644)
}

func read(path, registry string, hexLen int) ([]entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	seen := map[uint64]bool{}
	var es []entry
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 || len(rec) < 3 || rec[0] != registry {
			continue
		}
		if len(rec[1]) != hexLen {
			return nil, fmt.Errorf("%s:%d: assignment %q is not %d hex digits", path, line, rec[1], hexLen)
		}
		p, err := strconv.ParseUint(rec[1], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: assignment %q: %w", path, line, rec[1], err)
		}
		name := shortName(rec[2])
		if name == "" || strings.EqualFold(name, "Private") || strings.EqualFold(name, "IEEE Registration Authority") {
			continue
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		es = append(es, entry{prefix: p, vendor: name})
	}
	slices.SortFunc(es, func(a, b entry) int { return cmpU(a.prefix, b.prefix) })
	return es, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// legalSuffixes are cut from the end of organisation names ("Zebra
// Technologies Inc." and "Zebra Technologies Corp." are one vendor to a
// reader); the longest match is cut first, repeatedly.
var legalSuffixes = []string{
	"co., ltd.", "co., ltd", "co.,ltd.", "co.,ltd", "co. ltd.", "co. ltd", "co ltd", "co.ltd", "pty ltd", "pty. ltd.",
	"incorporated", "corporation", "limited", "company", "gmbh & co. kg", "gmbh & co kg",
	"inc.", "inc", "corp.", "corp", "ltd.", "ltd", "llc", "l.l.c.", "gmbh", "ag", "s.a.", "sa", "b.v.", "bv",
	"oy", "ab", "a/s", "as", "s.p.a.", "spa", "sas", "s.a.s.", "s.r.l.", "srl", "kg", "co.", "co", "plc", "nv", "n.v.",
	"k.k.", "kk", "sdn bhd", "sdn. bhd.", "pte ltd", "pte. ltd.", "s.l.", "sl", "s. de r.l. de c.v.",
}

func shortName(s string) string {
	name := strings.Join(strings.Fields(s), " ")
	for {
		lower := strings.ToLower(name)
		cut := false
		for _, suf := range legalSuffixes {
			if len(lower) > len(suf)+2 && strings.HasSuffix(lower, suf) {
				before := name[:len(name)-len(suf)]
				if c := before[len(before)-1]; c != ' ' && c != ',' {
					continue // a word ending in the suffix, not the suffix
				}
				name = strings.TrimRight(before, " ,")
				cut = true
				break
			}
		}
		if !cut {
			return name
		}
	}
}
