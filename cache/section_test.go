package cache

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestTimeOfDay(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"08:00", 8 * time.Hour, true},
		{"00:00", 0, true},
		{"23:59", 23*time.Hour + 59*time.Minute, true},
		{"24:00", 24 * time.Hour, true},
		{"24:01", 0, false},
		{"8", 0, false},
		{"08:0", 0, false},
		{"-1:00", 0, false},
		{"12:60", 0, false},
	}
	for _, tc := range tests {
		var got TimeOfDay
		err := yaml.Unmarshal([]byte(`"`+tc.in+`"`), &got)
		if (err == nil) != tc.ok || got.D() != tc.want {
			t.Errorf("TimeOfDay(%q) = %s, %v; want %s, ok=%v", tc.in, got.D(), err, tc.want, tc.ok)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("TimeOfDay(%q).String() = %q", tc.in, got.String())
		}
	}
}
