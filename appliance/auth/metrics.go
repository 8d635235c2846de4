package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	logins     *prometheus.CounterVec
	denied     *prometheus.CounterVec
	breakGlass prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, a *Authority) (*metrics, error) {
	s := metric.New(reg, "auth")
	m := &metrics{
		logins:     s.CounterVec("logins_total", "Login attempts by outcome (ok, bad_credentials, locked, bad_code, mfa_ok).", "outcome"),
		denied:     s.CounterVec("denied_requests_total", "Admin requests refused, by reason (unauthenticated, forbidden, mfa_required, cross_origin, unknown_route).", "reason"),
		breakGlass: s.Counter("breakglass_elevations_total", "Break-glass elevations started."),
	}
	s.GaugeFunc("sessions", "Live admin sessions.", func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.sessions))
	})
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}
