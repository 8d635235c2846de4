package advisory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/advisory"
)

// TestScoredDeadline: the SLA deadline follows the severity a CVSS vector gives; a
// finding without a usable vector keeps the low deadline, and the import names the
// advisory whose vector is bad.
func TestScoredDeadline(t *testing.T) {
	rec := func(id, sev string) string {
		return `{"id":"` + id + `","severity":[` + sev + `],"affected":[{"package":{"ecosystem":"Debian:12","name":"bash"},"versions":["5.2.15-2+b7"]}]}`
	}
	tests := []struct {
		name, record, severity, scoreErr string
	}{
		{"v3.1 critical", rec("DSA-1", `{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}`), "critical", ""},
		{"v3.1 medium", rec("DSA-2", `{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"}`), "medium", ""},
		{"v4.0 high", rec("DSA-3", `{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:L/VA:N/SC:N/SI:N/SA:N"}`), "high", ""},
		{"bad vector: unscored, low deadline", rec("DSA-4", `{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L"}`), "unknown", "advisory DSA-4 (document DSA-4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(s *advisory.Section, _ provider) { s.Feeds = nil })
			ctx := context.Background()
			res, err := e.svc.Import(ctx, "dsa.json", []byte(tt.record))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.ScoreErrors, "\n"); (tt.scoreErr == "") != (got == "") || !strings.Contains(got, tt.scoreErr) {
				t.Errorf("import score errors = %q, want %q", got, tt.scoreErr)
			}
			if err := e.svc.Match(ctx); err != nil {
				t.Fatal(err)
			}
			fs, err := e.svc.Findings(ctx, "ws-1", false)
			if err != nil || len(fs) != 1 {
				t.Fatalf("findings = %+v, %v; want one", fs, err)
			}
			f := fs[0]
			want := policyDeadline(advisory.Finding{Match: advisory.Match{Severity: tt.severity}, FirstSeen: f.FirstSeen})
			if f.Severity != tt.severity || !f.Deadline.Equal(want) {
				t.Errorf("finding severity %s, deadline %v; want %s, %v", f.Severity, f.Deadline, tt.severity, want)
			}
			if tt.severity != "unknown" {
				low := policyDeadline(advisory.Finding{Match: advisory.Match{Severity: "low"}, FirstSeen: f.FirstSeen})
				if !f.Deadline.Before(low) {
					t.Errorf("scored deadline %v is not before the low deadline %v", f.Deadline, low)
				}
			}
		})
	}
}
