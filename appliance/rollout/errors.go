package rollout

import (
	"errors"
	"fmt"
)

// Errors the engine returns, wrapped with what and why; callers branch on them with
// errors.Is (the admin API maps them to HTTP status codes).
var (
	// ErrInvalid: the input is malformed or out of range (400).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such ring, window, release, rollout or deployment (404).
	ErrNotFound = errors.New("not found")
	// ErrState: the action is not possible in the object's current state (409).
	ErrState = errors.New("not allowed in this state")
	// ErrSeparation: separation of duties forbids this actor the action (403).
	ErrSeparation = errors.New("separation of duties")
)

// refusal is an error of a kind above whose message is its own text alone (the approval
// and exception pages answer with the message as it stands, without the kind's prefix).
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

// refusef returns a refusal of kind with the formatted message.
func refusef(kind error, format string, args ...any) error {
	return &refusal{kind, fmt.Sprintf(format, args...)}
}
