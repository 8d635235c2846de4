package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestShortName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Zebra Technologies Corp.", "Zebra Technologies"},
		{"Cisco Systems, Inc", "Cisco Systems"},
		{"Shenzhen Example Technology Co.,Ltd.", "Shenzhen Example Technology"},
		{"  Axis   Communications AB ", "Axis Communications"},
		{"Tinc", "Tinc"}, // a word ending like a suffix stays
		{"Inc.", "Inc."}, // nothing left to cut from
		{"Corporate Co", "Corporate"},
	}
	for _, tt := range tests {
		if got := shortName(tt.in); got != tt.want {
			t.Errorf("shortName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRead(t *testing.T) {
	es, err := read(filepath.Join("testdata", "oui.csv"), "MA-L", 6)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{{0x00074D, "Zebra Technologies"}, {0x001B54, "Cisco Systems"}, {0x00A0F8, "Zebra Technologies"}}
	if diff := cmp.Diff(want, es, cmp.AllowUnexported(entry{})); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
}

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "oui.bin.gz")
	if err := run("testdata", out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || len(b) < 20 {
		t.Fatalf("output %d bytes, %v", len(b), err)
	}
	// Deterministic: the same input gives the same bytes (the committed table only
	// changes when ieee-data does).
	out2 := filepath.Join(t.TempDir(), "again.gz")
	run("testdata", out2)
	b2, _ := os.ReadFile(out2)
	if string(b) != string(b2) {
		t.Errorf("two runs gave different output")
	}
}
