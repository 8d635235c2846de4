package compliance

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

type fakeReviews []Review

func (fakeReviews) ApprovalPolicy() string                            { return "self_with_review" }
func (f fakeReviews) SelfApprovals(context.Context) ([]Review, error) { return f, nil }

// reviewFixture: one review countersigned in time, one waiting and not yet due, one
// overdue (an emergency, 2 days), one approved last year and countersigned then.
func reviewFixture() *Builder {
	b := fixture()
	b.Reviews = fakeReviews{
		{ID: 1, Rollout: "#1 fw", ApprovedBy: "ada", ApprovedAt: day(-10), DueAt: day(-3), CountersignedBy: "msp", CountersignedAt: day(-5)},
		{ID: 2, Rollout: "#2 fw", ApprovedBy: "ada", ApprovedAt: day(-1), DueAt: day(6)},
		{ID: 3, Rollout: "#3 kev", Emergency: true, ApprovedBy: "ada", ApprovedAt: day(-4), DueAt: day(-2)},
		{ID: 4, Rollout: "#0 old", ApprovedBy: "ada", ApprovedAt: day(-300), DueAt: day(-293), CountersignedBy: "msp", CountersignedAt: day(-295)},
	}
	return b
}

func TestReportReviews(t *testing.T) {
	tests := []struct {
		name          string
		from, to      time.Time
		self, overdue []int64
	}{
		{"this month", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), now, []int64{1, 2, 3}, []int64{3}},
		{"as of ten days ago nothing was overdue yet", day(-12), day(-9), []int64{1}, nil},
		{"review 1 waiting before its countersignature", day(-12), day(-6).Add(-time.Hour), []int64{1}, nil},
		{"review 3 past due, all open", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), day(-1), []int64{1, 2, 3}, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := reviewFixture().Build(context.Background(), now, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			ids := func(vs []Review) []int64 {
				var out []int64
				for _, v := range vs {
					out = append(out, v.ID)
				}
				return out
			}
			if r.ApprovalPolicy != "self_with_review" || !slices.Equal(ids(r.SelfApprovals), tt.self) || !slices.Equal(ids(r.ReviewsOverdue), tt.overdue) {
				t.Errorf("policy %q, self-approvals %v, overdue %v; want %v, %v", r.ApprovalPolicy, ids(r.SelfApprovals), ids(r.ReviewsOverdue), tt.self, tt.overdue)
			}
		})
	}
}

// TestReviewsOnPages: the compliance page, the printed report, the PDF, the JSON and
// the CSV all show the policy and the overdue review.
func TestReviewsOnPages(t *testing.T) {
	mux := handlerMux(t, reviewFixture())
	for path, want := range map[string][]string{
		"/compliance":                      {"self_with_review", `id="reviews-overdue"`, "#3 kev (emergency)"},
		"/compliance/report?cycle=2026-03": {"Approval policy and self-approvals", "self_with_review", "#3 kev"},
		"/api/v1/compliance":               {`"approval_policy": "self_with_review"`, `"reviews_overdue": [`},
		"/api/v1/compliance.csv":           {"approval_policy,self_with_review,reviews_overdue,1"},
		"/compliance/report.pdf":           {"%PDF-1."},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		for _, w := range want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("GET %s (%d) lacks %q", path, rec.Code, w)
			}
		}
	}
}
