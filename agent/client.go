package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// maxResponse bounds an API answer the agent reads (the appliance's own limit on
// requests is 1 MiB; offers lists are far smaller).
const maxResponse = 4 << 20

// APIError is a non-2xx answer of the appliance.
type APIError struct {
	Op         string // the call, e.g. "checkin"
	Status     int
	Message    string
	RetryAfter time.Duration // from Retry-After or retry_after_seconds; 0 if none
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("agent: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// statusOf returns the HTTP status of an *APIError in err's chain, else 0.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// client speaks the agent API v1 to one appliance. It is safe for concurrent use.
type client struct {
	base       *url.URL // the distribution URL, e.g. http://10.10.0.2:8080/
	http       *http.Client
	credential func() string
	userAgent  string
	now        func() time.Time // the agent's clock

	mu   sync.Mutex
	skew time.Duration // the agent's clock minus the appliance's (Date header), last seen
	seen bool
}

// noteDate records how far the agent's clock is from the appliance's, from a
// response's Date header (whole seconds; absent or malformed: nothing learned).
func (c *client) noteDate(h string) {
	t, err := http.ParseTime(h)
	if err != nil || c.now == nil {
		return
	}
	c.mu.Lock()
	c.skew, c.seen = c.now().Sub(t), true
	c.mu.Unlock()
}

// clockSkew is the last difference seen between the agent's and the appliance's clock.
func (c *client) clockSkew() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.skew, c.seen
}

// call sends body (nil: none) as JSON with method to path and decodes a 2xx answer
// into out (nil: ignore it).
func (c *client) call(ctx context.Context, op, method, path string, body, out any, auth bool) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("agent: %s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.resolve(path), rd)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.credential())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", op, err)
	}
	defer resp.Body.Close()
	c.noteDate(resp.Header.Get("Date"))
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("agent: %s: read answer: %w", op, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("agent: %s: answer over %d bytes", op, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(op, resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("agent: %s: decode answer: %w", op, err)
	}
	return nil
}

func apiError(op string, resp *http.Response, data []byte) *APIError {
	e := &APIError{Op: op, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb agentapi.Error
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		e.Message = eb.Error
		if eb.RetryAfterSeconds > 0 && e.RetryAfter == 0 {
			e.RetryAfter = time.Duration(eb.RetryAfterSeconds) * time.Second
		}
	} else {
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	return e
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date. A missing or
// bad header is 0.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 7*24*3600)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), 7*24*time.Hour)
	}
	return 0
}

// resolve makes an absolute URL of a path relative to the appliance's base URL.
func (c *client) resolve(path string) string {
	ref, err := url.Parse(path)
	if err != nil {
		return c.base.String() + strings.TrimPrefix(path, "/")
	}
	return c.base.ResolveReference(ref).String()
}

func (c *client) enroll(ctx context.Context, req agentapi.EnrollRequest) (agentapi.EnrollResponse, error) {
	var out agentapi.EnrollResponse
	err := c.call(ctx, "enroll", http.MethodPost, "/agent/v1/enroll", req, &out, false)
	if err == nil && (out.AgentID == "" || out.Credential == "") {
		err = errors.New("agent: enroll: answer without agent_id or credential")
	}
	return out, err
}

func (c *client) checkin(ctx context.Context, f agentapi.Facts) (agentapi.OffersResponse, error) {
	var out agentapi.OffersResponse
	err := c.call(ctx, "checkin", http.MethodPost, "/agent/v1/checkin", f, &out, true)
	return out, err
}

func (c *client) progress(ctx context.Context, id int64, state, detail string) error {
	op := fmt.Sprintf("deployment %d: progress %s", id, state)
	return c.call(ctx, op, http.MethodPost, fmt.Sprintf("/agent/v1/deployments/%d/progress", id), agentapi.ProgressRequest{State: state, Detail: detail}, nil, true)
}

func (c *client) outcome(ctx context.Context, id int64, o agentapi.OutcomeRequest) (agentapi.OutcomeResponse, error) {
	var out agentapi.OutcomeResponse
	op := fmt.Sprintf("deployment %d: outcome %s", id, o.Status)
	err := c.call(ctx, op, http.MethodPost, fmt.Sprintf("/agent/v1/deployments/%d/outcome", id), o, &out, true)
	return out, err
}
