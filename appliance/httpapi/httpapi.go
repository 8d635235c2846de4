// Package httpapi holds what the appliance's JSON APIs share: one writer for JSON
// answers, one error reply and one request-body decoder that is strict (unknown keys
// are refused, by name) and bounded; its twin for HTML forms (DecodeForm: a form into
// the same struct, through the same JSON decoding); and the Renderer the handlers that
// also serve HTML pages are handed. It is a leaf: it imports nothing of the project's.
package httpapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Renderer draws a page template by name (web.Pages implements it): what the handlers
// that serve HTML pages as well as JSON are handed.
type Renderer interface {
	Render(w http.ResponseWriter, name string, data any)
}

// WriteJSON answers v as indented JSON (one trailing newline) with status code, marked
// not to be cached. A value that cannot be encoded answers 500 with a JSON error
// instead.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error": "internal error encoding the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n')) // a failed write is the client gone; nothing to answer
}

// Error is the body of every JSON error reply: {"error": "..."}, with the seconds to wait
// when the answer is "not now".
type Error struct {
	Error             string `json:"error"`
	RetryAfterSeconds int64  `json:"retry_after_seconds,omitempty"`
}

// WriteError answers {"error": msg} with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, Error{Error: msg})
}

// ErrTooLarge is (wrapped) the decoders' error for a body over its limit; answer it 413.
var ErrTooLarge = errors.New("request body too large")

// DecodeJSON reads the request body, at most limit bytes, as one JSON value into v. An
// object key v has no field for is refused, and the error names it (`json: unknown
// field "colour"`), as is anything after the value. A body over limit is an error
// wrapping ErrTooLarge; w is told to close the connection then (it may be nil).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decode(w, r, v, limit, true)
}

// DecodeJSONLenient is DecodeJSON for wire APIs that promise to ignore the request
// fields they do not know (the agent API, so that newer agents talk to older
// appliances): unknown keys and anything after the value are let through.
func DecodeJSONLenient(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decode(w, r, v, limit, false)
}

func decode(w http.ResponseWriter, r *http.Request, v any, limit int64, strict bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil && strict {
		if _, terr := dec.Token(); terr != io.EOF {
			err = cmp.Or(tooLarge(terr), errors.New("data after the JSON value"))
		}
	}
	if tooLarge(err) != nil {
		return fmt.Errorf("request body over %d bytes: %w", limit, ErrTooLarge)
	}
	return err
}

// tooLarge returns err if it says the body went over the limit, else nil.
func tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return nil
}
