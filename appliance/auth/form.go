package auth

import (
	"errors"
	"net/http"
)

// formAction is the one shape of the state-changing handlers (a browser form or a JSON
// API call): read the request's input, do the action, answer. read is readFields(...), or
// anyInput for an action that takes no fields. An error from either goes to fail,
// except a pageError, which a browser form gets as its page again with the message;
// success goes to ok (usually back: a redirect for a form, JSON otherwise). The guard
// has checked the permission and the request's origin before.
func formAction[T any](a *Authority, read func(*http.Request) (input, error),
	do func(w http.ResponseWriter, r *http.Request, in input) (T, error),
	ok func(w http.ResponseWriter, r *http.Request, in input, v T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := read(r)
		var v T
		if err == nil {
			v, err = do(w, r, in)
		}
		if err == nil {
			ok(w, r, in, v)
			return
		}
		var pe *pageError
		if errors.As(err, &pe) {
			if isForm(r) {
				a.render(w, r, pe.code, pe.page, pe.data)
				return
			}
			err = pe.err
		}
		a.fail(w, r, err)
	}
}

// anyInput reads the input of an action that takes no fields but a form's "return": a
// body that does not parse is ignored, a JSON object with a key is refused (readFields).
func anyInput(r *http.Request) (input, error) {
	in, err := readInput(r)
	if err != nil || in == nil {
		return input{}, nil
	}
	return in, in.only(r, nil)
}

// back answers a successful change: a redirect to path (or to the form's "return") for a
// browser form, v as JSON with code otherwise.
func back[T any](path string, code int) func(http.ResponseWriter, *http.Request, input, T) {
	return func(w http.ResponseWriter, r *http.Request, in input, v T) { done(w, r, in, path, code, v) }
}

// reply is the JSON answer {"status": status} of a change that returned err, or err.
func reply(err error, status string) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]string{"status": status}, nil
}

// pageError is an action's error that a browser form gets as the page it came from
// (template page, with data, answered with code); API clients get err through fail.
type pageError struct {
	code int
	page string
	data Page
	err  error
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }
