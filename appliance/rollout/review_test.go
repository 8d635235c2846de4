package rollout

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const justified = "the pharmacy's label printers need this fix before Monday's delivery"

func selfReview(c *Config) { c.ApprovalPolicy = SelfWithReview }

// pending creates and submits a rollout of a new release as rita (emergency for a
// critical release when asked).
func (v *env) pending(t *testing.T, emergency bool) *Rollout {
	t.Helper()
	ctx := context.Background()
	rel := Release{}
	if emergency {
		rel.Severity = Critical
	}
	spec := pilotCore(v.release(t, rel).ID)
	spec.Emergency = emergency
	r, err := v.e.CreateRollout(ctx, "rita", spec)
	if err != nil {
		t.Fatal(err)
	}
	return must(t)(v.e.Submit(ctx, r.ID, "rita")).(*Rollout)
}

func TestSelfApprovePolicy(t *testing.T) {
	tests := []struct {
		name          string
		policy        ApprovalPolicy
		actor         string
		justification string
		emergency     bool
		want          error
		due           time.Duration // after approval, when want is nil
	}{
		{"refused under two_person", TwoPerson, "rita", justified, false, ErrSeparation, 0},
		{"refused without justification", SelfWithReview, "rita", "", false, ErrInvalid, 0},
		{"refused with a too short justification", SelfWithReview, "rita", "urgent", false, ErrInvalid, 0},
		{"refused with a too long justification", SelfWithReview, "rita", strings.Repeat("x", MaxJustification+1), false, ErrInvalid, 0},
		{"refused for anyone but the requester", SelfWithReview, "anna", justified, false, ErrSeparation, 0},
		{"standard change", SelfWithReview, "rita", justified, false, nil, 7 * 24 * time.Hour},
		{"emergency has the shorter deadline", SelfWithReview, "rita", justified, true, nil, 2 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, func(c *Config) { c.ApprovalPolicy = tt.policy })
			ctx := context.Background()
			r := v.pending(t, tt.emergency)
			_, err := v.e.SelfApprove(ctx, r.ID, tt.actor, tt.justification)
			if !errors.Is(err, tt.want) {
				t.Fatalf("SelfApprove = %v, want %v", err, tt.want)
			}
			reviews := must(t)(v.e.Reviews(ctx, false)).([]Review)
			if tt.want != nil {
				if got := v.rollout(t, r.ID); got.State != PendingApproval || len(reviews) != 0 {
					t.Errorf("after a refused self-approval: %s, %d reviews", got.State, len(reviews))
				}
				return
			}
			if got := v.rollout(t, r.ID); got.State != Approved || len(got.Approvals) != 1 || got.Approvals[0].By != "rita" {
				t.Errorf("rollout after self-approval: %s %+v", got.State, got.Approvals)
			}
			if len(reviews) != 1 || !reviews[0].DueAt.Equal(start.Add(tt.due)) || reviews[0].Emergency != tt.emergency || reviews[0].Justification != justified {
				t.Errorf("reviews = %+v, want one due %s", reviews, start.Add(tt.due))
			}
			acts := v.sink.actions()
			if !slices.Contains(acts, "rollout.self_approve") || !slices.Contains(acts, "review.open") {
				t.Errorf("audit actions %v lack rollout.self_approve and review.open", acts)
			}
			for _, ev := range v.sink.evs {
				if ev.Action == "rollout.self_approve" && (ev.Details["policy"] != "self_with_review" || ev.Details["justification"] != justified) {
					t.Errorf("self_approve event details %v", ev.Details)
				}
			}
		})
	}
}

func TestReviewDeadlines(t *testing.T) {
	tests := []struct {
		name      string
		emergency bool
		after     time.Duration
		overdue   bool
	}{
		{"standard on day 7", false, 7 * 24 * time.Hour, false},
		{"standard after 7 days", false, 7*24*time.Hour + time.Minute, true},
		{"emergency on day 2", true, 2 * 24 * time.Hour, false},
		{"emergency after 2 days", true, 2*24*time.Hour + time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, selfReview)
			ctx := context.Background()
			r := v.pending(t, tt.emergency)
			must(t)(v.e.SelfApprove(ctx, r.ID, "rita", justified))
			v.clk.Advance(tt.after)
			over := must(t)(v.e.OverdueReviews(ctx)).([]Review)
			if got := len(over) == 1; got != tt.overdue {
				t.Errorf("overdue after %s: %v, want %v", tt.after, over, tt.overdue)
			}
			// A countersignature closes the review, late or not.
			vs := must(t)(v.e.Reviews(ctx, true)).([]Review)
			if _, err := v.e.Countersign(ctx, vs[0].ID, "msp-ops", "checked the change record"); err != nil {
				t.Fatal(err)
			}
			if over := must(t)(v.e.OverdueReviews(ctx)).([]Review); len(over) != 0 {
				t.Errorf("countersigned review still overdue: %+v", over)
			}
		})
	}
}

func TestCountersign(t *testing.T) {
	v := newEnv(t, selfReview)
	ctx := context.Background()
	r := v.pending(t, false)
	must(t)(v.e.SelfApprove(ctx, r.ID, "rita", justified))
	id := must(t)(v.e.Reviews(ctx, true)).([]Review)[0].ID
	tests := []struct {
		name, actor, remark string
		id                  int64
		want                error
	}{
		{"by the same account", "rita", "looks fine to me", id, ErrSeparation},
		{"without a remark", "msp-ops", " ", id, ErrInvalid},
		{"with a too long remark", "msp-ops", strings.Repeat("x", MaxReviewRemark+1), id, ErrInvalid},
		{"unknown review", "msp-ops", "ok", 999, ErrNotFound},
		{"by another account", "msp-ops", "checked the change record", id, nil},
		{"twice", "anna", "also fine", id, ErrState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.e.Countersign(ctx, tt.id, tt.actor, tt.remark); !errors.Is(err, tt.want) {
				t.Errorf("Countersign = %v, want %v", err, tt.want)
			}
		})
	}
	vs := must(t)(v.e.Reviews(ctx, false)).([]Review)
	if len(vs) != 1 || vs[0].CountersignedBy != "msp-ops" || vs[0].Open() {
		t.Errorf("reviews = %+v", vs)
	}
}

// TestApprovalPolicyAudited: the policy in force is recorded on first start and again
// only when it changes.
func TestApprovalPolicyAudited(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	count := func() int {
		n := 0
		for _, a := range v.sink.actions() {
			if a == "rollout.approval_policy" {
				n++
			}
		}
		return n
	}
	if count() != 1 {
		t.Fatalf("first start: %d policy records, want 1", count())
	}
	reopen := func(p ApprovalPolicy) {
		t.Helper()
		e, err := New(ctx, Config{ApprovalPolicy: p}, Options{DB: v.db, Clock: v.clk, Log: v.e.log, Events: v.sink})
		if err != nil {
			t.Fatal(err)
		}
		if e.Policy() != p {
			t.Errorf("Policy = %s, want %s", e.Policy(), p)
		}
	}
	reopen(TwoPerson)
	if count() != 1 {
		t.Errorf("same policy again: %d records, want 1", count())
	}
	reopen(SelfWithReview)
	if count() != 2 {
		t.Errorf("changed policy: %d records, want 2", count())
	}
}

// TestReviewsAPI walks the routes: self-approve, list, countersign (same account
// refused), overdue.
func TestReviewsAPI(t *testing.T) {
	v := newEnv(t, selfReview)
	srv := v.pagesServer(t)
	rita, msp := client{t, srv.URL, map[string]string{ActorHeader: "rita"}}, client{t, srv.URL, map[string]string{ActorHeader: "msp-ops"}}
	r := v.pending(t, false)
	path := "/api/v1/approvals/" + itoa(r.ID) + "/self-approve"

	if code, body := rita.do("POST", path, map[string]string{"justification": "soon"}, nil); code != http.StatusBadRequest {
		t.Errorf("short justification: %d %s, want 400", code, body)
	}
	if code, body := msp.do("POST", path, map[string]string{"justification": justified}, nil); code != http.StatusForbidden {
		t.Errorf("not the requester: %d %s, want 403", code, body)
	}
	if code, body := rita.do("POST", path, map[string]string{"justification": justified}, nil); code != http.StatusOK {
		t.Fatalf("self-approve: %d %s", code, body)
	}
	var open []Review
	if code, _ := msp.do("GET", "/api/v1/reviews?open=1", nil, &open); code != http.StatusOK || len(open) != 1 || open[0].ApprovedBy != "rita" {
		t.Fatalf("open reviews: %d %+v", code, open)
	}
	var view ReviewsView
	if code, _ := rita.do("GET", "/reviews", nil, &view); code != http.StatusOK || view.Policy != SelfWithReview || len(view.Reviews) != 1 {
		t.Errorf("reviews page data: %d %+v", code, view)
	}
	v.clk.Advance(8 * 24 * time.Hour)
	var over []Review
	if code, _ := msp.do("GET", "/api/v1/reviews?overdue=1", nil, &over); code != http.StatusOK || len(over) != 1 || !over[0].Overdue {
		t.Errorf("overdue reviews after 8 days: %d %+v", code, over)
	}
	sign := "/api/v1/reviews/" + itoa(open[0].ID) + "/countersign"
	if code, body := rita.do("POST", sign, map[string]string{"remark": "fine"}, nil); code != http.StatusForbidden {
		t.Errorf("countersign by the self-approver: %d %s, want 403", code, body)
	}
	if code, body := msp.do("POST", "/api/v1/reviews/x/countersign", map[string]string{"remark": "fine"}, nil); code != http.StatusBadRequest {
		t.Errorf("bad id: %d %s, want 400", code, body)
	}
	var signed Review
	if code, body := msp.do("POST", sign, map[string]string{"remark": "checked the change record"}, &signed); code != http.StatusOK || signed.CountersignedBy != "msp-ops" {
		t.Errorf("countersign: %d %s", code, body)
	}
	if code, body := msp.do("POST", sign, map[string]string{"remark": "again"}, nil); code != http.StatusConflict {
		t.Errorf("second countersign: %d %s, want 409", code, body)
	}
}
