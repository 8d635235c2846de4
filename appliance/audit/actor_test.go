package audit

import (
	"strings"
	"testing"
)

func TestValidActor(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"user", "alice", true},
		{"mail address", "Bob.Smith@clinic-1.example", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"leading dot", ".alice", false},
		{"system actor", "system:audit", false},
		{"space", "alice smith", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidActor(tt.in); got != tt.want {
				t.Errorf("ValidActor(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
