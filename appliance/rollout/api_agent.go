package rollout

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/httpapi"
)

// maxBody bounds every API request body.
const maxBody = 1 << 20

// RegisterAgentAPI mounts the agent API (see README.md) on mux, the distribution
// listener's.
func (e *Engine) RegisterAgentAPI(mux *http.ServeMux) {
	mux.HandleFunc("POST /agent/v1/enroll", e.handleEnroll)
	mux.HandleFunc("POST /agent/v1/checkin", e.withAgent(e.handleCheckIn))
	mux.HandleFunc("GET /agent/v1/deployments", e.withAgent(e.handleOffers))
	mux.HandleFunc("POST /agent/v1/deployments/{id}/progress", e.withAgent(e.handleProgress))
	mux.HandleFunc("POST /agent/v1/deployments/{id}/outcome", e.withAgent(e.handleOutcome))
	mux.HandleFunc("POST /agent/v1/certificate", e.withAgentCert(e.handleRenew, true))
}

// remoteAddr is the connection's source address (never a header).
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// fail writes err as a JSON error with the status its kind calls for. Errors that are
// not the client's fault are logged and not detailed.
func fail(w http.ResponseWriter, log *slog.Logger, err error, retry time.Duration) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		code = http.StatusUnauthorized
	case errors.Is(err, ErrSeparation):
		code = http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrState):
		code = http.StatusConflict
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		log.Error("rollout: api", "err", err)
		msg = "internal error; see the appliance's log"
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(seconds(retry), 10))
	}
	httpapi.WriteJSON(w, code, agentapi.Error{Error: msg, RetryAfterSeconds: seconds(retry)})
}

// decode reads a JSON body of at most maxBody bytes into v; unknown fields are ignored
// (the agent API promises so; see README.md).
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return bodyError(httpapi.DecodeJSONLenient(w, r, v, maxBody))
}

// bodyError is a decoder's error as the APIs answer it: ErrTooLarge as is, anything
// else ErrInvalid (400) naming the problem.
func bodyError(err error) error {
	if err == nil || errors.Is(err, httpapi.ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
}

func failDecode(w http.ResponseWriter, log *slog.Logger, err error) {
	if errors.Is(err, httpapi.ErrTooLarge) {
		httpapi.WriteJSON(w, http.StatusRequestEntityTooLarge, agentapi.Error{Error: err.Error()})
		return
	}
	fail(w, log, err, 0)
}

func (e *Engine) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req agentapi.EnrollRequest
	if err := decode(w, r, &req); err != nil {
		failDecode(w, e.log, err)
		return
	}
	ag, cred, err := e.Enroll(r.Context(), req.Token, req.Facts, remoteAddr(r))
	if errors.Is(err, ErrUnauthenticated) {
		httpapi.WriteJSON(w, http.StatusForbidden, agentapi.Error{Error: "enrolment token unknown, expired, revoked or used up"})
		return
	}
	if err != nil {
		fail(w, e.log, err, 0)
		return
	}
	e.log.Info("rollout: agent enrolled", "agent", ag.ID, "hostname", ag.Hostname, "ring", ag.Ring, "addr", ag.LastAddr)
	resp := agentapi.EnrollResponse{AgentID: ag.ID, Credential: cred, PollIntervalSeconds: seconds(e.cfg.PollInterval)}
	if req.CSR != "" && r.TLS != nil {
		if resp.ClientCert, err = e.signClient(req.CSR, ag); err != nil {
			// The enrolment stands (the token is spent): the agent asks again with
			// POST /agent/v1/certificate.
			e.log.Warn("rollout: client certificate not issued at enrolment", "agent", ag.ID, "err", err)
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// withAgent authenticates the agent's Bearer credential and, over the agents' TLS
// listener, its client certificate.
func (e *Engine) withAgent(h func(http.ResponseWriter, *http.Request, *Agent)) http.HandlerFunc {
	return e.withAgentCert(h, false)
}

// withAgentCert is withAgent; expiredOK accepts an expired client certificate (the
// renewal of an agent that was away longer than its certificate lived).
func (e *Engine) withAgentCert(h func(http.ResponseWriter, *http.Request, *Agent), expiredOK bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="patchgate-agent"`)
			httpapi.WriteJSON(w, http.StatusUnauthorized, agentapi.Error{Error: "missing Authorization: Bearer <credential>"})
			return
		}
		ag, err := e.Authenticate(r.Context(), strings.TrimSpace(cred))
		if err == nil {
			err = e.checkClientCert(r.TLS, ag, expiredOK)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="patchgate-agent"`)
			fail(w, e.log, err, 0)
			return
		}
		h(w, r, ag)
	}
}

func (e *Engine) handleCheckIn(w http.ResponseWriter, r *http.Request, ag *Agent) {
	var f agentapi.Facts
	if err := decode(w, r, &f); err != nil {
		failDecode(w, e.log, err)
		return
	}
	if err := e.checkIn(r.Context(), ag, f, remoteAddr(r)); err != nil {
		fail(w, e.log, fmt.Errorf("rollout: check-in: %w", err), 0)
		return
	}
	a, ring, offers, err := e.Offers(r.Context(), ag)
	if err != nil {
		fail(w, e.log, err, 0)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, agentapi.OffersResponse{AgentID: ag.ID, AssetID: a.ID, Ring: ring, PollIntervalSeconds: seconds(e.cfg.PollInterval), Deployments: offers,
		RenewCertificate: e.renewDue(r)})
}

func (e *Engine) handleOffers(w http.ResponseWriter, r *http.Request, ag *Agent) {
	_, ring, offers, err := e.Offers(r.Context(), ag)
	if err != nil {
		fail(w, e.log, err, 0)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, agentapi.OffersResponse{Ring: ring, PollIntervalSeconds: seconds(e.cfg.PollInterval), Deployments: offers})
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %q is not an id", ErrInvalid, r.PathValue("id"))
	}
	return id, nil
}

// deploymentRequest reads the {id} and the JSON body (into v) of an agent's report on a
// deployment; when either is bad it answers the request and returns false.
func (e *Engine) deploymentRequest(w http.ResponseWriter, r *http.Request, v any) (int64, bool) {
	id, err := pathID(r)
	if err != nil {
		fail(w, e.log, err, 0)
		return 0, false
	}
	if err := decode(w, r, v); err != nil {
		failDecode(w, e.log, err)
		return 0, false
	}
	return id, true
}

func (e *Engine) handleProgress(w http.ResponseWriter, r *http.Request, ag *Agent) {
	var req agentapi.ProgressRequest
	id, ok := e.deploymentRequest(w, r, &req)
	if !ok {
		return
	}
	d, wait, err := e.Progress(r.Context(), ag, id, DeploymentState(req.State), req.Detail)
	if err != nil {
		fail(w, e.log, err, wait)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, agentapi.ProgressResponse{State: string(d.State)})
}

func (e *Engine) handleOutcome(w http.ResponseWriter, r *http.Request, ag *Agent) {
	var o agentapi.OutcomeRequest
	id, ok := e.deploymentRequest(w, r, &o)
	if !ok {
		return
	}
	d, err := e.Outcome(r.Context(), ag, id, o)
	if err != nil {
		fail(w, e.log, err, 0)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, agentapi.OutcomeResponse{State: string(d.State), Attempt: d.Attempt, MaxAttempts: d.MaxAttempts, RetryAt: d.RetryAt.UTC()})
}
