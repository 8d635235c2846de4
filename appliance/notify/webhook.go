package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/clock"
)

// The headers of a webhook POST.
const (
	// SignatureHeader is "sha256=" and the hex HMAC-SHA256 of the body, keyed with the
	// webhook's secret.
	SignatureHeader = "X-Patchgate-Signature"
	// TimestampHeader is the attempt's Unix time in seconds; the signed body carries the
	// same value as "sent", so a receiver can refuse replays.
	TimestampHeader = "X-Patchgate-Timestamp"
	// EventHeader is the event's kind.
	EventHeader = "X-Patchgate-Event"
)

// Sign is the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is the signature of body under secret, in constant time.
// Receivers written in Go (and the tests) use it.
func Verify(secret, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// poster POSTs one webhook's events.
type poster struct {
	hook   Webhook
	client *http.Client
	clock  clock.Clock
}

func (p poster) send(ctx context.Context, ev Event) error {
	timeout := p.hook.Timeout.D()
	if timeout == 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now := p.clock.Now()
	body := ev.body(now)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", p.hook.Name, plainError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "patchgate-notify")
	req.Header.Set(EventHeader, string(ev.Kind))
	req.Header.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(SignatureHeader, Sign([]byte(p.hook.Secret.Value()), body))
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", p.hook.Name, plainError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: answered %s", p.hook.Name, resp.Status)
	}
	return nil
}
