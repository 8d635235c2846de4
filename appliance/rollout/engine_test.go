package rollout

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/patchgate/patchgate/agentapi"
)

// TestPilotThenCoreAfterSoak walks a rollout through two rings with agentless devices:
// the pilot gets the bytes in its window, the core ring only after the pilot succeeded
// and soaked.
func TestPilotThenCoreAfterSoak(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.pilotCoreRollout(t, Release{Version: "2.0"})
	if r.State != Scheduled {
		t.Fatalf("state %s, want scheduled", r.State)
	}
	ds := must(t)(v.e.Deployments(ctx, DeploymentFilter{RolloutID: r.ID})).([]*Deployment)
	if len(ds) != 4 {
		t.Fatalf("%d deployments created at schedule, want 4 (two pilot, two core; not the printer)", len(ds))
	}
	v.tick(t)
	if r = v.rollout(t, r.ID); r.State != Running || r.Current != 0 {
		t.Fatalf("after tick: %s stage %d, want running stage 0", r.State, r.Current)
	}

	// 12:00: the window opens at 22:00.
	if d := v.decide("10.20.0.11"); d.Allow || d.Status != http.StatusServiceUnavailable || d.RetryAfter != 10*time.Hour {
		t.Fatalf("pilot outside its window: %+v, want 503 with Retry-After 10h", d)
	}
	if d := v.decide("10.20.0.21"); d.Allow || d.Status != http.StatusServiceUnavailable || !strings.Contains(d.Reason, "waits for ring pilot") {
		t.Fatalf("core before the pilot is done: %+v, want 503 waiting for pilot", d)
	}

	v.clk.Set(start.Add(10 * time.Hour)) // 22:00
	if d := v.decide("10.20.0.11"); !d.Allow {
		t.Fatalf("pilot in its window: %+v, want serve", d)
	}
	if d := v.deployment(t, r.ID, "p1"); d.State != DepDownloading || !d.Times[DepDownloading].Equal(v.clk.Now()) {
		t.Fatalf("p1 deployment %s at %v, want downloading now", d.State, d.Times[DepDownloading])
	}
	if d := v.decide("10.20.0.21"); d.Allow || d.RetryAfter != 15*time.Minute {
		t.Fatalf("core while the pilot runs, window open: %+v, want 503 with the 15m recheck", d)
	}
	// A later scan reads the new firmware on both pilot devices.
	for _, id := range []string{"p1", "p2"} {
		if n, err := v.e.ObserveFirmware(ctx, id, "2.0"); err != nil || n != 1 {
			t.Fatalf("ObserveFirmware(%s) = %d, %v", id, n, err)
		}
	}
	v.clk.Advance(time.Minute)
	v.tick(t)
	r = v.rollout(t, r.ID)
	metAt := start.Add(10*time.Hour + time.Minute)
	if r.Current != 0 || !r.Stages[0].MetAt.Equal(metAt) {
		t.Fatalf("pilot met: stage %d met at %v, want stage 0 met at %v", r.Current, r.Stages[0].MetAt, metAt)
	}

	// Success met, soak not passed: the core ring still waits.
	v.clk.Set(metAt.Add(23 * time.Hour))
	v.tick(t)
	if r = v.rollout(t, r.ID); r.Current != 0 {
		t.Fatalf("after 23h of a 24h soak the stage is %d, want 0", r.Current)
	}
	if d := v.decide("10.20.0.21"); d.Allow {
		t.Fatal("core got the bytes before the pilot's soak passed")
	}
	v.clk.Set(metAt.Add(24 * time.Hour)) // 22:01 the next day, in the window
	v.tick(t)
	if r = v.rollout(t, r.ID); r.Current != 1 || r.Stages[0].DoneAt.IsZero() || r.Stages[1].StartedAt.IsZero() {
		t.Fatalf("after the soak: stage %d, pilot done %v, core started %v", r.Current, r.Stages[0].DoneAt, r.Stages[1].StartedAt)
	}
	if d := v.decide("10.20.0.21"); !d.Allow {
		t.Fatalf("core after the soak, in its window: %+v, want serve", d)
	}
	if d := v.decide("10.30.0.5"); d.Allow || d.Status != http.StatusForbidden || !strings.Contains(d.Reason, "in no ring") {
		t.Fatalf("printer in no ring: %+v, want 403", d)
	}
	for _, id := range []string{"c1", "c2"} {
		must(t)(v.e.ObserveFirmware(ctx, id, "2.0"))
	}
	v.tick(t)
	if r = v.rollout(t, r.ID); r.State != Completed {
		t.Fatalf("after core succeeded: %s, want completed", r.State)
	}
	if got := value(t, v.e.met.rollouts.WithLabelValues("completed")); got != 1 {
		t.Errorf("patchgate_rollout_rollouts{state=completed} = %v, want 1", got)
	}
	if got := value(t, v.e.met.deployments.WithLabelValues("succeeded")); got != 4 {
		t.Errorf("patchgate_rollout_deployments{state=succeeded} = %v, want 4", got)
	}
	// Every transition is in the history, time-stamped, and went to the sink.
	want := []string{"rollout.approval_policy", "release.create", "rollout.create", "rollout.submit", "rollout.approve", "rollout.schedule", "deployments.create",
		"rollout.start", "deployment.downloading", "deployment.succeeded", "deployment.succeeded", "stage.met", "stage.advance",
		"deployment.downloading", "deployment.succeeded", "deployment.succeeded", "stage.advance"}
	if diff := cmp.Diff(want, v.sink.actions()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	evs := must(t)(v.e.Events(ctx, r.ID, 100)).([]Event)
	if len(evs) != len(want)-2 { // the policy on first start and release.create are not a rollout's events
		t.Errorf("history has %d events, want %d", len(evs), len(want)-2)
	}
}

// TestFailingPilotPauses: failures in the pilot pause the rollout with a reason, the
// core ring never gets the bytes, resuming counts only new results, and retries
// happen after the back-off.
func TestFailingPilotPauses(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.pilotCoreRollout(t, Release{})
	v.clk.Set(start.Add(10 * time.Hour))
	v.tick(t)
	agP1, agP2 := v.agentFor(t, "p1"), v.agentFor(t, "p2")

	// One failure out of one result: below min_results (2), no pause yet.
	fail := func(ag *Agent, asset string) *Deployment {
		t.Helper()
		offers := v.offers(t, ag)
		if len(offers) != 1 {
			t.Fatalf("%s has %d offers, want 1", asset, len(offers))
		}
		code := 2
		return must(t)(v.e.Outcome(ctx, ag, offers[0].ID, agentapi.OutcomeRequest{Status: string(DepFailed), ExitCode: &code, LogTail: "dpkg: error"})).(*Deployment)
	}
	d := fail(agP1, "p1")
	if d.State != DepFailed || !d.RetryAt.Equal(v.clk.Now().Add(10*time.Minute)) {
		t.Fatalf("failed deployment: %s retry at %v", d.State, d.RetryAt)
	}
	v.tick(t)
	if r = v.rollout(t, r.ID); r.State != Running {
		t.Fatalf("one failure of min 2 results: %s, want running", r.State)
	}
	fail(agP2, "p2")
	v.tick(t)
	r = v.rollout(t, r.ID)
	if r.State != Paused || !strings.Contains(r.Reason, "2 of 2 results failed") {
		t.Fatalf("after two failures: %s (%q), want paused saying why", r.State, r.Reason)
	}
	if d := v.decide("10.20.0.21"); d.Allow || d.Status != http.StatusServiceUnavailable || !strings.Contains(d.Reason, "paused") {
		t.Fatalf("core device while paused: %+v, want 503 paused", d)
	}
	if d := v.decide("10.20.0.11"); d.Allow {
		t.Fatalf("pilot device while paused: %+v, want refused", d)
	}
	// No retries while paused.
	v.clk.Advance(time.Hour)
	v.tick(t)
	if d := v.deployment(t, r.ID, "p1"); d.State != DepFailed {
		t.Fatalf("paused rollout retried: %s", d.State)
	}
	// Resume: the old failures no longer count, and the due retries happen.
	must(t)(v.e.Resume(ctx, r.ID, "dora", "vendor fixed the mirror"))
	v.tick(t)
	if r = v.rollout(t, r.ID); r.State != Running {
		t.Fatalf("after resume: %s (%s), want running", r.State, r.Reason)
	}
	d = v.deployment(t, r.ID, "p1")
	if d.State != DepScheduled || d.Attempt != 2 {
		t.Fatalf("after the back-off: %s attempt %d, want scheduled attempt 2", d.State, d.Attempt)
	}
	offers := v.offers(t, agP1)
	if len(offers) != 1 || offers[0].Attempt != 2 || offers[0].State != string(DepOffered) {
		t.Fatalf("re-offer: %+v", offers)
	}
	// Halting cancels what is open; the core never had a byte.
	must(t)(v.e.Halt(ctx, r.ID, "dora", "bad firmware"))
	for _, id := range []string{"p1", "c1", "c2"} {
		if d := v.deployment(t, r.ID, id); d.State != DepCancelled {
			t.Errorf("%s after halt: %s, want cancelled", id, d.State)
		}
	}
	if d := v.deployment(t, r.ID, "c1"); d.Times[DepDownloading] != (time.Time{}) {
		t.Error("a core device downloaded during a failing pilot")
	}
	if d := v.decide("10.20.0.21"); d.Allow || d.Status != http.StatusForbidden || !strings.Contains(d.Reason, "held") {
		t.Fatalf("after halt: %+v, want 403 held", d)
	}
}

// agentFor enrols an agent and tells the inventory it runs on asset id.
func (v *env) agentFor(t *testing.T, id string) *Agent {
	t.Helper()
	ctx := context.Background()
	tok, _, err := v.e.CreateToken(ctx, "dora", "test", "", nil, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	ag, _, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: id}, v.addrOf(id))
	if err != nil {
		t.Fatal(err)
	}
	a := v.asset(t, id)
	a.AgentID = ag.ID
	v.assets.Put(a)
	return ag
}

func TestRetriesUpToMaxAttempts(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, func(c *Config) { c.MaxAttempts = 2; c.RetryBase = 10 * time.Minute })
	v.devices()
	rel := v.release(t, Release{})
	spec := pilotCore(rel.ID)
	spec.Stages[0].ErrorPercent, spec.Stages[0].MinResults = 100, 10 // do not pause
	r := v.scheduled(t, spec)
	v.clk.Set(start.Add(10 * time.Hour))
	v.tick(t)
	ag := v.agentFor(t, "p1")
	for attempt := 1; attempt <= 2; attempt++ {
		offers := v.offers(t, ag)
		if len(offers) != 1 || offers[0].Attempt != attempt {
			t.Fatalf("attempt %d: offers %+v", attempt, offers)
		}
		d := must(t)(v.e.Outcome(ctx, ag, offers[0].ID, agentapi.OutcomeRequest{Status: string(DepFailed)})).(*Deployment)
		if final := attempt == 2; final != d.RetryAt.IsZero() {
			t.Fatalf("attempt %d: retry at %v", attempt, d.RetryAt)
		}
		v.clk.Advance(9 * time.Minute)
		v.tick(t)
		if d := v.deployment(t, r.ID, "p1"); d.State != DepFailed {
			t.Fatalf("attempt %d: retried before the back-off: %s", attempt, d.State)
		}
		v.clk.Advance(time.Minute)
		v.tick(t)
	}
	if d := v.deployment(t, r.ID, "p1"); d.State != DepFailed || d.Attempt != 2 {
		t.Fatalf("after the last attempt: %s attempt %d, want failed for good at 2", d.State, d.Attempt)
	}
	if offers := v.offers(t, ag); len(offers) != 0 {
		t.Fatalf("a final failure is still offered: %+v", offers)
	}
}

// TestEmergencyPath: a known-exploited release rolled out as an emergency needs two
// approvers other than the requester, then skips the windows.
func TestEmergencyPath(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	v.devices()
	normal := v.release(t, Release{Severity: Medium})
	if _, err := v.e.CreateRollout(ctx, "rita", RolloutSpec{ReleaseID: normal.ID, Emergency: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("emergency of a medium release: %v, want ErrInvalid", err)
	}
	rel := v.release(t, Release{Severity: High, KnownExploited: true, CVEs: []string{"CVE-2024-3400"}})
	spec := pilotCore(rel.ID)
	spec.Emergency = true
	r := must(t)(v.e.CreateRollout(ctx, "rita", spec)).(*Rollout)
	must(t)(v.e.Submit(ctx, r.ID, "rita"))
	if _, err := v.e.Approve(ctx, r.ID, "rita", "me"); !errors.Is(err, ErrSeparation) {
		t.Fatalf("requester approves: %v, want ErrSeparation", err)
	}
	if r = must(t)(v.e.Approve(ctx, r.ID, "anna", "")).(*Rollout); r.State != PendingApproval {
		t.Fatalf("one approval of an emergency: %s", r.State)
	}
	if _, err := v.e.Approve(ctx, r.ID, "anna", "again"); !errors.Is(err, ErrSeparation) {
		t.Fatalf("same approver twice: %v, want ErrSeparation", err)
	}
	if r = must(t)(v.e.Approve(ctx, r.ID, "bert", "")).(*Rollout); r.State != Approved {
		t.Fatalf("two approvals: %s", r.State)
	}
	must(t)(v.e.Schedule(ctx, r.ID, "dora", time.Time{}))
	v.tick(t)
	// 12:00, outside the nightly window: an emergency is served anyway.
	if d := v.decide("10.20.0.11"); !d.Allow {
		t.Fatalf("emergency outside the window: %+v, want serve", d)
	}
	ag := v.agentFor(t, "p2")
	offers := v.offers(t, ag)
	if len(offers) != 1 || !offers[0].InstallAllowed || !offers[0].DownloadAllowed || offers[0].RetryAfterSeconds != 0 {
		t.Fatalf("emergency offer: %+v, want install allowed now", offers)
	}
	if !offers[0].Release.KnownExploited || offers[0].Deadline.After(start.Add(72*time.Hour)) {
		t.Errorf("offer release %+v deadline %v", offers[0].Release, offers[0].Deadline)
	}
}

func TestAuditFailureRefusesTheAction(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	rel := v.release(t, Release{})
	r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
	must(t)(v.e.Submit(ctx, r.ID, "rita"))
	v.sink.fail = errAuditDown
	if _, err := v.e.Approve(ctx, r.ID, "anna", ""); !errors.Is(err, errAuditDown) {
		t.Fatalf("Approve with the audit down = %v, want the audit error", err)
	}
	if r = v.rollout(t, r.ID); r.State != PendingApproval || len(r.Approvals) != 0 {
		t.Fatalf("after a refused approval: %s with %d approvals", r.State, len(r.Approvals))
	}
	// The change was made in the transaction but the record failed: nothing happened.
	v.sink.fail, v.sink.failAfter = nil, errAuditDown
	if _, err := v.e.Approve(ctx, r.ID, "anna", ""); !errors.Is(err, errAuditDown) {
		t.Fatalf("Approve with the record failing after the change = %v, want the audit error", err)
	}
	if r = v.rollout(t, r.ID); r.State != PendingApproval || len(r.Approvals) != 0 {
		t.Fatalf("after a crash between change and record: %s with %d approvals", r.State, len(r.Approvals))
	}
	if evs := must(t)(v.e.Events(ctx, r.ID, 10)).([]Event); evs[0].Action != "rollout.submit" {
		t.Errorf("the history kept %s of an action that did not happen", evs[0].Action)
	}
	v.sink.failAfter = nil
	if r = must(t)(v.e.Approve(ctx, r.ID, "anna", "")).(*Rollout); r.State != Approved {
		t.Fatalf("after the audit is back: %s", r.State)
	}
}

func TestPrestageAndPins(t *testing.T) {
	ctx := context.Background()
	off := Window{Name: "off-peak", Cron: "0 1 * * *", Duration: Duration(4 * time.Hour), Zone: "UTC"}
	v := newEnv(t, func(c *Config) { c.OffPeak = &off; c.PrefetchLead = 2 * time.Hour })
	rel := v.release(t, Release{Targets: []string{"fw/a.bin", "fw/b.bin"}})
	r := must(t)(v.e.CreateRollout(ctx, "rita", pilotCore(rel.ID))).(*Rollout)
	must(t)(v.e.Submit(ctx, r.ID, "rita"))
	must(t)(v.e.Approve(ctx, r.ID, "anna", ""))
	v.tick(t)
	if diff := cmp.Diff([]string{"demo/fw/a.bin", "demo/fw/b.bin"}, v.cache.pinned()); diff != "" {
		t.Errorf("pins of an approved rollout (-want +got):\n%s", diff)
	}
	// Scheduled to start tomorrow 23:00; the first window opens tonight at 22:00.
	must(t)(v.e.Schedule(ctx, r.ID, "dora", start.Add(35*time.Hour)))
	tests := []struct {
		name string
		at   time.Time
		want int
	}{
		{"12:00: neither off-peak nor near a window", start, 0},
		{"19:59: the window is 2h01m away", start.Add(7*time.Hour + 59*time.Minute), 0},
		{"20:00: the window opens within the 2h lead", start.Add(8 * time.Hour), 2},
		{"01:00: off-peak, but done already", start.Add(13 * time.Hour), 2},
	}
	for _, tt := range tests {
		v.clk.Set(tt.at)
		v.e.Prestage(ctx)
		if got := len(v.cache.prefetchd); got != tt.want {
			t.Errorf("%s: %d targets prefetched, want %d", tt.name, got, tt.want)
		}
	}
	must(t)(v.e.Cancel(ctx, r.ID, "rita", "superseded"))
	v.tick(t)
	if p := v.cache.pinned(); len(p) != 0 {
		t.Errorf("pins after cancel: %v", p)
	}
}

func TestPrestageOffPeak(t *testing.T) {
	ctx := context.Background()
	off := Window{Name: "off-peak", Cron: "0 1 * * *", Duration: Duration(4 * time.Hour), Zone: "UTC"}
	v := newEnv(t, func(c *Config) {
		c.OffPeak = &off
		c.SeedWindows = []Window{{Name: "weekend", Cron: "0 8 * * sat", Duration: Duration(8 * time.Hour), Zone: "UTC"}}
	})
	rel := v.release(t, Release{})
	v.scheduled(t, pilotCore(rel.ID))
	v.e.Prestage(ctx)
	if n := len(v.cache.prefetchd); n != 0 {
		t.Fatalf("prefetched %d at noon on Monday", n)
	}
	v.cache.fail = errors.New("upstream down")
	v.clk.Set(start.Add(13 * time.Hour)) // 01:00 Tuesday, off-peak
	v.e.Prestage(ctx)
	if h := v.e.Health(); len(h) != 1 || !strings.Contains(h[0].Text, "upstream down") {
		t.Fatalf("health after a failed prestage: %+v", h)
	}
	v.cache.fail = nil
	v.clk.Advance(time.Hour)
	v.e.Prestage(ctx)
	if n := len(v.cache.prefetchd); n != 1 {
		t.Fatalf("prefetched %d off-peak after a failure, want 1", n)
	}
	if h := v.e.Health(); len(h) != 0 {
		t.Fatalf("health after a good prestage: %+v", h)
	}
}

func TestOverdueAndKEVImport(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.pilotCoreRollout(t, Release{Severity: Medium, CVEs: []string{"CVE-2024-3400"}})
	d := v.deployment(t, r.ID, "c1")
	if want := start.Add(30 * 24 * time.Hour); !d.Deadline.Equal(want) {
		t.Fatalf("medium deadline %v, want %v", d.Deadline, want)
	}
	kev := `{"catalogVersion":"x","vulnerabilities":[{"cveID":"CVE-2024-3400","dueDate":"2026-03-03"}]}`
	res := must(t)(v.e.ImportKEV(ctx, "dora", strings.NewReader(kev))).(KEVResult)
	if diff := cmp.Diff([]int64{r.ReleaseID}, res.Releases); diff != "" {
		t.Fatalf("KEV import marked (-want +got):\n%s", diff)
	}
	d = v.deployment(t, r.ID, "c1")
	if want := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC); !d.Deadline.Equal(want) {
		t.Fatalf("deadline after KEV import %v, want the KEV due date %v", d.Deadline, want)
	}
	v.clk.Set(time.Date(2026, 3, 4, 0, 0, 1, 0, time.UTC))
	v.tick(t)
	c, i := must2(t)(v.e.OverdueAssets(ctx, 10))
	counts, items := c.([]Overdue), i.([]OverdueItem)
	if counts[2].Severity != Medium || counts[2].Assets != 4 || len(items) != 4 {
		t.Fatalf("overdue %+v items %d, want 4 medium", counts, len(items))
	}
	if got := value(t, v.e.met.overdue.WithLabelValues("medium")); got != 4 {
		t.Errorf("patchgate_rollout_overdue_assets{severity=medium} = %v, want 4", got)
	}
	must(t)(v.e.ObserveFirmware(ctx, "c1", "")) // an empty version changes nothing
	v.tick(t)
	if got := value(t, v.e.met.overdue.WithLabelValues("medium")); got != 4 {
		t.Errorf("after an empty firmware report: %v overdue, want 4", got)
	}
}

func TestSkippedWhenTheDeviceHasIt(t *testing.T) {
	v := newEnv(t)
	v.devices()
	a := v.asset(t, "c2")
	a.Firmware = "2.0"
	v.assets.Put(a)
	rel := v.release(t, Release{Version: "2.0"})
	r := v.scheduled(t, pilotCore(rel.ID))
	if d := v.deployment(t, r.ID, "c2"); d.State != DepSkipped {
		t.Fatalf("device already on 2.0: %s, want skipped", d.State)
	}
}

// value reads a gauge or counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// TestAgentRing: an agent's ring comes from its enrolment token, also once the inventory
// knows its device, unless an admin assigned the device a ring there.
func TestAgentRing(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	tok, _, err := v.e.CreateToken(ctx, "dora", "pilot desks", "pilot", []string{"rx"}, time.Hour, 5)
	if err != nil {
		t.Fatal(err)
	}
	enrol := func(host string) *Agent {
		ag, _, err := v.e.Enroll(ctx, tok, agentapi.Facts{Hostname: host}, v.addrOf("p1"))
		if err != nil {
			t.Fatal(err)
		}
		return ag
	}
	a1, a2, a3 := enrol("unknown-to-inventory"), enrol("known"), enrol("assigned")
	v.assets.Put(Asset{ID: "agent:" + a2.ID, Name: "known", AgentID: a2.ID, Segment: "clinical"})
	v.assets.Put(Asset{ID: "agent:" + a3.ID, Name: "assigned", AgentID: a3.ID, Ring: "critical"})
	tests := []struct {
		name string
		ag   *Agent
		want string
	}{
		{"not in the inventory: the token's ring", a1, "pilot"},
		{"in the inventory without a ring: still the token's", a2, "pilot"},
		{"a ring assigned in the inventory wins", a3, "critical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ring, _, err := v.e.Offers(ctx, tt.ag)
			if err != nil || ring != tt.want {
				t.Errorf("ring = %q, %v; want %q", ring, err, tt.want)
			}
		})
	}
	all := must(t)(v.e.allAssets(ctx)).([]Asset)
	if len(all) != 3 {
		t.Fatalf("allAssets = %d assets, want 3 (no agent twice)", len(all))
	}
	for _, a := range all {
		if a.AgentID == a2.ID && (a.Ring != "pilot" || a.Tags[0] != "rx") {
			t.Errorf("the known agent's asset %+v lacks the token's ring and tags", a)
		}
	}
}
