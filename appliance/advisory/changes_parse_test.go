package advisory

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseChanges(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		err      string
	}{
		{"two lines", "\"2026/a.json\",\"2026-12-04T10:00:00Z\"\n\"2026/b.json\",\"2026-12-03T10:00:00+02:00\"\n", 2, ""},
		{"unquoted, no final newline", "2026/a.json,2026-12-04T10:00:00Z", 1, ""},
		{"empty file", "", 0, ""},
		{"one field", "\"2026/a.json\"\n", 0, "changes.csv"},
		{"three fields", "a,2026-12-04T10:00:00Z,x\n", 0, "changes.csv"},
		{"bad time", "a,yesterday\n", 0, `line 1: time "yesterday"`},
		{"no path", "\"\",2026-12-04T10:00:00Z\n", 0, "line 1: no document path"},
		{"bad quoting", "\"a,2026-12-04T10:00:00Z\n", 0, "changes.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChanges([]byte(tt.in))
			if tt.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseChanges error = %v, want an ErrInvalid containing %q", err, tt.err)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("parseChanges = %+v, %v; want %d changes", got, err, tt.want)
			}
			for _, c := range got {
				if c.at.Location() != time.UTC {
					t.Errorf("time %v not in UTC", c.at)
				}
			}
		})
	}
}

func TestIncremental(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC) }
	prev := Data{Docs: map[string]time.Time{"a": at(1), "b": at(2), "gone": at(1)},
		Advisories: []Advisory{{ID: "A", From: "a"}, {ID: "B", From: "b"}, {ID: "G", From: "gone"}, {ID: "I", From: ""}}}
	tests := []struct {
		name     string
		changed  []change
		budget   int
		fetch    string
		kept     string
		pending  int
		docTimeB time.Time
	}{
		{"unchanged kept, gone dropped", []change{{"a", at(1)}, {"b", at(2)}}, 5, "", "A,B", 0, at(2)},
		{"changed and new fetched, newest first", []change{{"a", at(1)}, {"b", at(3)}, {"c", at(4)}}, 5, "c,b", "A", 0, at(3)},
		{"beyond the budget: old data and time kept", []change{{"a", at(1)}, {"b", at(3)}, {"c", at(4)}}, 1, "c", "A,B", 1, at(2)},
		{"budget zero", []change{{"c", at(4)}}, 0, "", "", 1, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fetch, d := incremental(prev, latestChanges(tt.changed), tt.budget)
			var kept []string
			for _, a := range d.Advisories {
				kept = append(kept, a.ID)
			}
			if strings.Join(fetch, ",") != tt.fetch || strings.Join(kept, ",") != tt.kept || d.pending != tt.pending || !d.Docs["b"].Equal(tt.docTimeB) {
				t.Errorf("incremental = fetch %v, kept %v, pending %d, b at %v; want %s, %s, %d, %v", fetch, kept, d.pending, d.Docs["b"], tt.fetch, tt.kept, tt.pending, tt.docTimeB)
			}
		})
	}
}

// FuzzParseChanges: any bytes parse or are an ErrInvalid; each change has a path and
// a UTC time.
func FuzzParseChanges(f *testing.F) {
	f.Add([]byte("\"2026/a.json\",\"2026-12-04T10:00:00Z\"\n"))
	f.Add([]byte("a,b\nc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := parseChanges(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, c := range cs {
			if c.url == "" || c.at.Location() != time.UTC {
				t.Fatalf("accepted %+v", c)
			}
		}
		latestChanges(cs)
	})
}
