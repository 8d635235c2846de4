package rollout

import (
	"fmt"
	"net/http"
)

// ReviewsView is what the reviews page shows: the policy in force, the self-approvals
// (open and countersigned), and the signed-in user's own rollouts waiting for approval,
// which they may self-approve under self_with_review.
type ReviewsView struct {
	Policy           ApprovalPolicy `json:"policy"`
	ReviewDays       float64        `json:"review_days"`
	EmergencyDays    float64        `json:"emergency_review_days"`
	MinJustification int            `json:"-"`
	MaxJustification int            `json:"-"`
	Reviews          []Review       `json:"reviews"`
	Mine             []RolloutInfo  `json:"-"`
	Actor            string         `json:"-"`
}

// registerReviews mounts the reviews page and API (permissions in auth.AdminRoutes).
func (p *Pages) registerReviews(mux *http.ServeMux) {
	mux.HandleFunc("GET /reviews", p.page("reviews.html", p.reviewsView))
	mux.HandleFunc("GET /api/v1/reviews", p.list(func(r *http.Request) (any, error) {
		if r.URL.Query().Get("overdue") != "" {
			return p.e.OverdueReviews(r.Context())
		}
		return p.e.Reviews(r.Context(), r.URL.Query().Get("open") != "")
	}))
	mux.HandleFunc("POST /api/v1/reviews/{id}/countersign", p.action("/reviews", http.StatusOK, []string{"remark"},
		func(r *http.Request, in map[string]string, actor string) (any, error) {
			id, err := formID(r)
			if err != nil {
				return nil, err
			}
			return p.e.Countersign(r.Context(), id, actor, in["remark"])
		}))
	mux.HandleFunc("POST /api/v1/approvals/{id}/self-approve", p.action("/reviews", http.StatusOK, []string{"justification"},
		func(r *http.Request, in map[string]string, actor string) (any, error) {
			id, err := formID(r)
			if err != nil {
				return nil, err
			}
			if _, err := p.e.SelfApprove(r.Context(), id, actor, in["justification"]); err != nil {
				return nil, err
			}
			return map[string]string{"status": "self-approved; another account must countersign it", "rollout": fmt.Sprint(id)}, nil
		}))
}

func (p *Pages) reviewsView(r *http.Request) (any, error) {
	v := ReviewsView{Policy: p.e.cfg.ApprovalPolicy, ReviewDays: p.e.cfg.ReviewWithin.Hours() / 24,
		EmergencyDays: p.e.cfg.EmergencyReviewWithin.Hours() / 24, MinJustification: MinJustification, MaxJustification: MaxJustification}
	var err error
	if v.Reviews, err = p.e.Reviews(r.Context(), false); err != nil {
		return nil, err
	}
	if actor, aerr := p.actor(r); aerr == nil && v.Policy == SelfWithReview {
		v.Actor = actor
		waiting, err := p.e.AwaitingApproval(r.Context())
		if err != nil {
			return nil, err
		}
		for _, ro := range waiting {
			if ro.RequestedBy == actor {
				v.Mine = append(v.Mine, ro)
			}
		}
	}
	return v, nil
}
