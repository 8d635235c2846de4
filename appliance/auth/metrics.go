package auth

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	logins     *prometheus.CounterVec
	denied     *prometheus.CounterVec
	breakGlass prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, a *Authority) *metrics {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "patchgate_auth_logins_total",
			Help: "Login attempts by outcome (ok, bad_credentials, locked, bad_code, mfa_ok)."}, []string{"outcome"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "patchgate_auth_denied_requests_total",
			Help: "Admin requests refused, by reason (unauthenticated, forbidden, mfa_required, cross_origin, unknown_route)."}, []string{"reason"}),
		breakGlass: prometheus.NewCounter(prometheus.CounterOpts{Name: "patchgate_auth_breakglass_elevations_total",
			Help: "Break-glass elevations started."}),
	}
	if reg != nil {
		reg.MustRegister(m.logins, m.denied, m.breakGlass,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_auth_sessions",
				Help: "Live admin sessions."}, func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				return float64(len(a.sessions))
			}))
	}
	return m
}
