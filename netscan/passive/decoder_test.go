package passive

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/bpf"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/scantest"
)

var update = flag.Bool("update", false, "rewrite the pcap and golden files in testdata/frames")

var frameTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func writePcap(t *testing.T, path string, frames ...[]byte) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: frameTime, CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readPcap(t testing.TB, path string) [][]byte {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	return scantest.ReadPcap(t, path)
}

// describe renders what the decoder made of frames, one line per
// observation or error.
func describe(d *Decoder, frames [][]byte) string {
	var b strings.Builder
	for i, f := range frames {
		n, err := d.Decode(f, frameTime, func(o netscan.Observation) {
			netscan.SortFacts(o.Facts)
			fmt.Fprintf(&b, "frame %d: %s iface=%s\n", i, o, o.Interface)
		})
		switch {
		case err != nil:
			fmt.Fprintf(&b, "frame %d: error: %v\n", i, err)
		case n == 0:
			fmt.Fprintf(&b, "frame %d: nothing\n", i)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "frames")
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			pcapPath := filepath.Join(dir, tc.name+".pcap")
			goldenPath := filepath.Join(dir, tc.name+".golden")
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				writePcap(t, pcapPath, tc.build(t))
			}
			got := describe(NewDecoder("eth0"), readPcap(t, pcapPath))
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("decode %s (-want +got):\n%s", pcapPath, diff)
			}
		})
	}
}

// TestBuildersMatchCommitted keeps the builders and the committed captures
// in step: a change to a builder without -update fails here.
func TestBuildersMatchCommitted(t *testing.T) {
	for _, tc := range frameCases() {
		frames := readPcap(t, filepath.Join("testdata", "frames", tc.name+".pcap"))
		if len(frames) != 1 || !bytes.Equal(frames[0], tc.build(t)) {
			t.Errorf("%s: committed capture differs from its builder; run go test -update", tc.name)
		}
	}
}

func TestMalformedIsErrMalformed(t *testing.T) {
	for _, tc := range frameCases() {
		frames := readPcap(t, filepath.Join("testdata", "frames", tc.name+".pcap"))
		_, err := NewDecoder("eth0").Decode(frames[0], frameTime, func(netscan.Observation) {})
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode error %v does not wrap ErrMalformed", tc.name, err)
		}
		if wantErr := strings.Contains(tc.name, "truncated") || strings.Contains(tc.name, "bad") || strings.Contains(tc.name, "garbage"); wantErr != (err != nil) {
			t.Errorf("%s: Decode error = %v, want error %v", tc.name, err, wantErr)
		}
	}
}

func TestFilter(t *testing.T) {
	vm, err := bpf.NewVM(Filter(DefaultSnaplen))
	if err != nil {
		t.Fatalf("bpf.NewVM(Filter) = %v", err)
	}
	if _, err := bpf.Assemble(Filter(DefaultSnaplen)); err != nil {
		t.Fatalf("bpf.Assemble(Filter) = %v", err)
	}
	for _, tc := range frameCases() {
		frames := readPcap(t, filepath.Join("testdata", "frames", tc.name+".pcap"))
		n, err := vm.Run(frames[0])
		if err != nil {
			t.Fatalf("%s: filter run: %v", tc.name, err)
		}
		if got := n > 0; got != tc.accept {
			t.Errorf("%s: filter accepts = %v (%d bytes), want %v", tc.name, got, n, tc.accept)
		}
	}
}

func TestDecodeAllocations(t *testing.T) {
	for _, name := range []string{"arp_request", "tcp_ignored", "dns_ignored", "mdns_query_ignored", "ssdp_search_ignored"} {
		frame := readPcap(t, filepath.Join("testdata", "frames", name+".pcap"))[0]
		d := NewDecoder("eth0")
		emit := func(netscan.Observation) {}
		d.Decode(frame, frameTime, emit) // warm the reused layers
		if allocs := testing.AllocsPerRun(100, func() { d.Decode(frame, frameTime, emit) }); allocs != 0 {
			t.Errorf("Decode(%s) allocates %.0f times per frame, want 0", name, allocs)
		}
	}
}

// TestReplay runs a Capture over a pcap holding every golden frame three
// times: repeats are suppressed, and the counters add up.
func TestReplay(t *testing.T) {
	var frames [][]byte
	cases := frameCases()
	for range 3 {
		for _, tc := range cases {
			frames = append(frames, readPcap(t, filepath.Join("testdata", "frames", tc.name+".pcap"))...)
		}
	}
	path := filepath.Join(t.TempDir(), "all.pcap")
	writePcap(t, path, frames...)
	r := scantest.OpenPcap(t, path)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return frameTime }
	c := NewReplay("eth9", r, m, slog.New(slog.DiscardHandler), now)
	var got []netscan.Observation
	if err := c.Run(context.Background(), func(o netscan.Observation) { got = append(got, o) }); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Count what one pass of the decoder gives, to compare.
	var once, malformed, decoded int
	d := NewDecoder("eth9")
	for _, tc := range cases {
		frame := readPcap(t, filepath.Join("testdata", "frames", tc.name+".pcap"))[0]
		n, err := d.Decode(frame, frameTime, func(netscan.Observation) { once++ })
		if err != nil {
			malformed++
		} else if n > 0 {
			decoded++
		}
	}
	if len(got) != once {
		t.Errorf("Run passed on %d observations, want %d (repeats suppressed)", len(got), once)
	}
	for _, tt := range []struct {
		name string
		c    prometheus.Collector
		want int
	}{
		{"seen", m.seen.WithLabelValues("eth9"), 3 * len(cases)},
		{"decoded", m.decoded.WithLabelValues("eth9"), 3 * decoded},
		{"dropped", m.dropped.WithLabelValues("eth9"), 3 * malformed},
	} {
		if got := int(counterValue(t, tt.c)); got != tt.want {
			t.Errorf("frames %s = %d, want %d", tt.name, got, tt.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); !strings.HasPrefix(name, "patchgate_netscan_") || !strings.HasSuffix(name, "_total") {
			t.Errorf("metric %s: want patchgate_netscan_..._total", name)
		}
	}
}

func TestRepeatWindow(t *testing.T) {
	r := newRepeats(time.Minute)
	o := netscan.Observation{Source: netscan.SourceARP, MAC: netscan.MAC{0, 7, 0x4d, 1, 2, 3}}
	steps := []struct {
		at   time.Duration
		want bool
	}{{0, true}, {30 * time.Second, false}, {61 * time.Second, true}, {90 * time.Second, false}}
	for _, s := range steps {
		r.now = frameTime.Add(s.at)
		if got := r.fresh(o); got != s.want {
			t.Errorf("fresh at +%v = %v, want %v", s.at, got, s.want)
		}
	}
}

// FuzzDecode: whatever the bytes, Decode never panics, returns either
// observations or an error wrapping ErrMalformed, and every fact it emits
// is non-empty and clean (printable, at most MaxFactLen bytes).
func FuzzDecode(f *testing.F) {
	entries, _ := filepath.Glob(filepath.Join("testdata", "frames", "*.pcap"))
	for _, e := range entries {
		for _, fr := range readPcap(f, e) {
			f.Add(fr)
		}
	}
	d := NewDecoder("fuzz0")
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := d.Decode(frame, frameTime, func(o netscan.Observation) {
			if o.Source == "" || o.Interface != "fuzz0" {
				t.Errorf("observation without source or interface: %v", o)
			}
			for _, fa := range o.Facts {
				if fa.Value == "" || netscan.CleanValue(fa.Value) != fa.Value {
					t.Errorf("unclean fact %q", fa)
				}
			}
		})
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode error %v does not wrap ErrMalformed", err)
		}
		if n < 0 {
			t.Errorf("Decode returned n = %d", n)
		}
	})
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
