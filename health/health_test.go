package health

import (
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	failing := func(s string) (Problem, bool) {
		switch s[0] {
		case 'e':
			return Problem{Code: s, Severity: Error}, true
		case 'w':
			return Problem{Code: s, Severity: Warning}, true
		}
		return Problem{}, false
	}
	tests := []struct {
		name  string
		items []string
		want  []string
	}{
		{"none", nil, nil},
		{"all fine", []string{"ok1", "ok2"}, nil},
		{"worst first, equals in order", []string{"w1", "ok", "e1", "w2", "e2"}, []string{"e1", "e2", "w1", "w2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range List(tt.items, failing) {
				got = append(got, p.Code)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.items, got, tt.want)
			}
		})
	}
}
