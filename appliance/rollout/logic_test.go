package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) // a Monday

func TestStageEvaluate(t *testing.T) {
	stage := Stage{Ring: "pilot", SuccessPercent: 90, ErrorPercent: 20, MinResults: 3, Soak: Duration(24 * time.Hour)}
	tests := []struct {
		name       string
		metAt      time.Time
		c          Counts
		now        time.Time
		want       Action
		wantMet    time.Time
		wantReason string
	}{
		{"nothing in yet", time.Time{}, Counts{Total: 10}, t0, Wait, time.Time{}, "0 of 10 succeeded"},
		{"success not met: 8 of 10 < 90%", time.Time{}, Counts{Total: 10, Succeeded: 8, RecentSucceeded: 8}, t0, Wait, time.Time{}, "needs 90%"},
		{"success met just now: soak starts", time.Time{}, Counts{Total: 10, Succeeded: 9, RecentSucceeded: 9}, t0, Wait, t0, "soaking until"},
		{"success met but soak not passed", t0, Counts{Total: 10, Succeeded: 10, RecentSucceeded: 10}, t0.Add(23 * time.Hour), Wait, t0, "soaking until 2026-03-03T12:00:00Z"},
		{"success met and soak passed", t0, Counts{Total: 10, Succeeded: 9, RecentSucceeded: 9}, t0.Add(24 * time.Hour), Advance, t0, "soaked 24h"},
		{"skipped count as success (already had it)", t0, Counts{Total: 2, Succeeded: 2}, t0.Add(25 * time.Hour), Advance, t0, ""},
		{"error threshold with few results: 2 of 2 failed but N=3", time.Time{}, Counts{Total: 10, Failed: 2, RecentFailed: 2}, t0, Wait, time.Time{}, ""},
		{"error threshold reached: 1 of 3 failed is 33% >= 20%", time.Time{}, Counts{Total: 10, Succeeded: 2, Failed: 1, RecentSucceeded: 2, RecentFailed: 1}, t0, Pause, time.Time{}, "1 of 3 results failed (33%)"},
		{"below the error threshold: 1 of 6 is 17%", time.Time{}, Counts{Total: 10, Succeeded: 5, Failed: 1, RecentSucceeded: 5, RecentFailed: 1}, t0, Wait, time.Time{}, ""},
		{"finished with too many failures pauses, never advances", t0, Counts{Total: 10, Succeeded: 9, Failed: 1, RecentSucceeded: 2, RecentFailed: 1}, t0.Add(48 * time.Hour), Pause, t0, "error threshold 20%"},
		{"failures before the last resume do not count", t0, Counts{Total: 10, Succeeded: 9, Failed: 1, RecentSucceeded: 3, RecentFailed: 0}, t0.Add(48 * time.Hour), Advance, t0, ""},
		{"an empty ring passes at once, soak or not", time.Time{}, Counts{}, t0, Advance, t0, "has no devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stage
			st.MetAt = tt.metAt
			v := st.Evaluate(tt.c, tt.now)
			if v.Action != tt.want || !v.MetAt.Equal(tt.wantMet) || !strings.Contains(v.Reason, tt.wantReason) {
				t.Errorf("Evaluate(%+v) = %v, met %v, %q; want %v, met %v, reason containing %q", tt.c, v.Action, v.MetAt, v.Reason, tt.want, tt.wantMet, tt.wantReason)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	p := DefaultPolicy()
	day := 24 * time.Hour
	rel := func(sev Severity, kev bool, due time.Time) *Release {
		return &Release{Severity: sev, KnownExploited: kev, KEVDue: due, Published: t0}
	}
	tests := []struct {
		name  string
		r     *Release
		since time.Time
		want  time.Time
	}{
		{"critical: 72h", rel(Critical, false, time.Time{}), time.Time{}, t0.Add(72 * time.Hour)},
		{"high: 7 days", rel(High, false, time.Time{}), time.Time{}, t0.Add(7 * day)},
		{"medium: 30 days", rel(Medium, false, time.Time{}), time.Time{}, t0.Add(30 * day)},
		{"low: 90 days", rel(Low, false, time.Time{}), time.Time{}, t0.Add(90 * day)},
		{"a device known later counts from then", rel(High, false, time.Time{}), t0.Add(10 * day), t0.Add(17 * day)},
		{"a device known earlier counts from publication", rel(High, false, time.Time{}), t0.Add(-10 * day), t0.Add(7 * day)},
		{"known exploited, no due date: critical SLA", rel(Medium, true, time.Time{}), time.Time{}, t0.Add(72 * time.Hour)},
		{"known exploited, due sooner than the critical SLA", rel(Low, true, t0.Add(day)), time.Time{}, t0.Add(day)},
		{"known exploited, due later than the critical SLA", rel(High, true, t0.Add(14*day)), time.Time{}, t0.Add(72 * time.Hour)},
		{"known exploited: a late device is due at the KEV date, already past", rel(High, true, t0.Add(2*day)), t0.Add(10 * day), t0.Add(2 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Deadline(tt.r, tt.since); !got.Equal(tt.want) {
				t.Errorf("Deadline = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRingOf(t *testing.T) {
	rings := []Ring{
		{Name: "pilot", Order: 0, Selector: Selector{Tags: []string{"pilot"}}},
		{Name: "core", Order: 1, Selector: Selector{Segments: []string{"clinical", "office"}}},
		{Name: "critical", Order: 2, Selector: Selector{DeviceTypes: []string{"pharmacy-robot", "pos"}, Assets: []string{"a-rx-server"}}},
	}
	tests := []struct {
		name string
		a    Asset
		want string
	}{
		{"tag beats segment", Asset{ID: "ws1", Tags: []string{"pilot"}, Segment: "clinical"}, "pilot"},
		{"segment only", Asset{ID: "ws2", Segment: "office"}, "core"},
		{"device type beats segment", Asset{ID: "robot", Type: "pharmacy-robot", Segment: "clinical"}, "critical"},
		{"explicit asset beats tag", Asset{ID: "a-rx-server", Tags: []string{"pilot"}}, "critical"},
		{"inventory assignment beats everything", Asset{ID: "a-rx-server", Ring: "pilot", Type: "pos"}, "pilot"},
		{"unknown assigned ring falls back to selectors", Asset{ID: "x", Ring: "nosuch", Segment: "clinical"}, "core"},
		{"nothing matches", Asset{ID: "printer", Segment: "devices"}, ""},
		{"tie at one level goes to the later ring", Asset{ID: "y", Type: "pos", Tags: []string{"x"}}, "critical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RingOf(tt.a, rings); got != tt.want {
				t.Errorf("RingOf(%+v) = %q, want %q", tt.a, got, tt.want)
			}
		})
	}
}

func TestApprovalSeparationOfDuties(t *testing.T) {
	newPending := func(emergency bool) *Rollout {
		r := &Rollout{ID: 1, State: Draft, Emergency: emergency, Risk: "low", TestEvidence: "pilot lab ok", RollbackPlan: "reinstall previous",
			Stages: []Stage{{Ring: "pilot"}}}
		need := 1
		if emergency {
			need = 2
		}
		if err := r.submit("rita", need, t0); err != nil {
			t.Fatal(err)
		}
		return r
	}
	type step struct {
		by      string
		wantErr error
	}
	tests := []struct {
		name      string
		emergency bool
		steps     []step
		want      State
	}{
		{"requester cannot approve own rollout", false, []step{{"rita", ErrSeparation}}, PendingApproval},
		{"another person approves", false, []step{{"anna", nil}}, Approved},
		{"emergency: one approval is not enough", true, []step{{"anna", nil}}, PendingApproval},
		{"emergency: the same approver twice is refused", true, []step{{"anna", nil}, {"anna", ErrSeparation}}, PendingApproval},
		{"emergency: requester plus one other is refused", true, []step{{"anna", nil}, {"rita", ErrSeparation}}, PendingApproval},
		{"emergency: two distinct approvers other than the requester", true, []step{{"anna", nil}, {"bert", nil}}, Approved},
		{"approving an approved rollout is refused", false, []step{{"anna", nil}, {"bert", ErrState}}, Approved},
		{"no approver named", false, []step{{"", ErrInvalid}}, PendingApproval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPending(tt.emergency)
			for i, s := range tt.steps {
				_, err := r.approve(s.by, "ok", t0)
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
					t.Fatalf("step %d: approve(%q) = %v, want %v", i, s.by, err, s.wantErr)
				}
			}
			if r.State != tt.want {
				t.Errorf("state = %s, want %s", r.State, tt.want)
			}
			if tt.want == Approved && tt.emergency != r.SkipsWindows() {
				t.Errorf("SkipsWindows = %v for emergency=%v", r.SkipsWindows(), tt.emergency)
			}
		})
	}
}

func TestStateTransitions(t *testing.T) {
	mk := func(s State) *Rollout {
		return &Rollout{ID: 1, State: s, RequestedBy: "rita", Stages: []Stage{{Ring: "pilot"}, {Ring: "core"}}, Risk: "r", TestEvidence: "t", RollbackPlan: "b"}
	}
	tests := []struct {
		name string
		from State
		do   func(r *Rollout) error
		want State // "" means the action must be refused
	}{
		{"submit a draft", Draft, func(r *Rollout) error { return r.submit("rita", 1, t0) }, PendingApproval},
		{"submit without a rollback plan", Draft, func(r *Rollout) error { r.RollbackPlan = " "; return r.submit("rita", 1, t0) }, ""},
		{"submit twice", PendingApproval, func(r *Rollout) error { return r.submit("rita", 1, t0) }, ""},
		{"reject with remark", PendingApproval, func(r *Rollout) error { return r.reject("anna", "no test evidence", t0) }, Draft},
		{"reject without remark", PendingApproval, func(r *Rollout) error { return r.reject("anna", "", t0) }, ""},
		{"requester cannot reject (cancel instead)", PendingApproval, func(r *Rollout) error { return r.reject("rita", "x", t0) }, ""},
		{"schedule an approved", Approved, func(r *Rollout) error { return r.schedule(t0.Add(time.Hour), t0) }, Scheduled},
		{"schedule a pending", PendingApproval, func(r *Rollout) error { return r.schedule(t0, t0) }, ""},
		{"start a scheduled", Scheduled, func(r *Rollout) error { return r.start(t0) }, Running},
		{"pause a running", Running, func(r *Rollout) error { return r.pause("x", t0) }, Paused},
		{"pause a paused", Paused, func(r *Rollout) error { return r.pause("x", t0) }, ""},
		{"resume a paused", Paused, func(r *Rollout) error { return r.resume(t0) }, Running},
		{"resume a running", Running, func(r *Rollout) error { return r.resume(t0) }, ""},
		{"halt a running", Running, func(r *Rollout) error { return r.halt("bad patch", t0) }, Halted},
		{"halt without reason", Running, func(r *Rollout) error { return r.halt("", t0) }, ""},
		{"halt a draft", Draft, func(r *Rollout) error { return r.halt("x", t0) }, ""},
		{"cancel a scheduled", Scheduled, func(r *Rollout) error { return r.cancel("x", t0) }, Cancelled},
		{"cancel a running", Running, func(r *Rollout) error { return r.cancel("x", t0) }, ""},
		{"advance the last stage completes", Running, func(r *Rollout) error { r.Current = 1; return r.advance("", t0) }, Completed},
		{"advance a paused", Paused, func(r *Rollout) error { return r.advance("", t0) }, ""},
		{"nothing after completed", Completed, func(r *Rollout) error { return r.resume(t0) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mk(tt.from)
			err := tt.do(r)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("action from %s allowed (now %s), want refused", tt.from, r.State)
				}
				if r.State != tt.from {
					t.Errorf("refused action changed state %s -> %s", tt.from, r.State)
				}
				return
			}
			if err != nil || r.State != tt.want {
				t.Fatalf("action from %s = %v, state %s; want %s", tt.from, err, r.State, tt.want)
			}
			if !r.StateAt.Equal(t0) {
				t.Errorf("StateAt = %v, want the transition time %v", r.StateAt, t0)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{10 * time.Minute, time.Hour}
	tests := []struct {
		attempt int
		want    time.Duration
	}{{1, 10 * time.Minute}, {2, 20 * time.Minute}, {3, 40 * time.Minute}, {4, time.Hour}, {10, time.Hour}}
	for _, tt := range tests {
		if got := b.after(tt.attempt); got != tt.want {
			t.Errorf("after(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	d := &Deployment{ID: 1, Attempt: 1, MaxAttempts: 2}
	d.fail(b, t0)
	if d.RetryAt != t0.Add(10*time.Minute) {
		t.Fatalf("first failure: retry at %v", d.RetryAt)
	}
	if err := d.retry(t0.Add(5 * time.Minute)); err == nil {
		t.Fatal("retry before the back-off passed was allowed")
	}
	if err := d.retry(t0.Add(10 * time.Minute)); err != nil || d.State != DepScheduled || d.Attempt != 2 {
		t.Fatalf("retry = %v, state %s attempt %d", err, d.State, d.Attempt)
	}
	d.fail(b, t0.Add(time.Hour))
	if !d.RetryAt.IsZero() {
		t.Fatalf("failure of the last attempt has a retry at %v", d.RetryAt)
	}
	if err := d.retry(t0.Add(48 * time.Hour)); err == nil {
		t.Fatal("a final failure was retried")
	}
}

func TestKEV(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	const catalog = `{"title":"CISA Catalog of Known Exploited Vulnerabilities","catalogVersion":"2026.03.01","dateReleased":"2026-03-01T15:00:00.000Z","count":3,
	"vulnerabilities":[
	 {"cveID":"CVE-2024-3400","vendorProject":"Palo Alto","product":"PAN-OS","dateAdded":"2024-04-12","dueDate":"2024-04-19","knownRansomwareCampaignUse":"Unknown"},
	 {"cveID":"CVE-2024-1111","dateAdded":"2024-04-01","dueDate":"2024-04-22"},
	 {"cveID":"CVE-2024-1111","dateAdded":"2024-04-01","dueDate":"2024-04-15"}]}`
	k, err := ParseKEV(strings.NewReader(catalog), ny)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "2026.03.01" || len(k.Due) != 2 {
		t.Fatalf("catalog %q with %d entries", k.Version, len(k.Due))
	}
	// Due on 2024-04-19 means by the end of that day in the site's zone.
	if want := time.Date(2024, 4, 20, 0, 0, 0, 0, ny); !k.Due["CVE-2024-3400"].Equal(want) {
		t.Errorf("due = %v, want %v", k.Due["CVE-2024-3400"], want)
	}
	tests := []struct {
		name    string
		cves    []string
		changed bool
		due     time.Time
	}{
		{"not listed", []string{"CVE-2020-0001"}, false, time.Time{}},
		{"listed", []string{"CVE-2024-3400"}, true, time.Date(2024, 4, 20, 0, 0, 0, 0, ny)},
		{"the earliest due of several (and of duplicates)", []string{"CVE-2024-3400", "CVE-2024-1111"}, true, time.Date(2024, 4, 16, 0, 0, 0, 0, ny)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Release{CVEs: tt.cves}
			if got := k.Apply(r); got != tt.changed || r.KnownExploited != tt.changed || !r.KEVDue.Equal(tt.due) {
				t.Errorf("Apply = %v, known %v, due %v; want %v, due %v", got, r.KnownExploited, r.KEVDue, tt.changed, tt.due)
			}
		})
	}
	for _, bad := range []struct{ name, in, want string }{
		{"not JSON", `<html>`, "not a KEV JSON catalog"},
		{"no list", `{"title":"x"}`, `no "vulnerabilities" list`},
		{"bad CVE", `{"vulnerabilities":[{"cveID":"CVE-24-1","dueDate":"2024-01-01"}]}`, "vulnerabilities[0].cveID"},
		{"bad due date", `{"vulnerabilities":[{"cveID":"CVE-2024-0001","dueDate":"01/02/2024"}]}`, "vulnerabilities[0] (CVE-2024-0001).dueDate"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := ParseKEV(strings.NewReader(bad.in), ny)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("ParseKEV = %v, want ErrInvalid mentioning %q", err, bad.want)
			}
		})
	}
}

// FuzzParseKEV: whatever the bytes, ParseKEV never panics, and every CVE it accepts
// is well-formed.
func FuzzParseKEV(f *testing.F) {
	f.Add([]byte(`{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2024-3400","dueDate":"2024-04-19"}]}`))
	f.Add([]byte(`{"vulnerabilities":[]}`))
	f.Add([]byte(`{"vulnerabilities":[{"cveID":"CVE-2024-3400","dueDate":""},{"cveID":"CVE-2024-3400","dueDate":"2024-02-30"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEV(strings.NewReader(string(b)), time.UTC)
		if err != nil {
			return
		}
		for c := range k.Due {
			if !cveRE.MatchString(c) {
				t.Fatalf("accepted malformed CVE %q", c)
			}
		}
	})
}
