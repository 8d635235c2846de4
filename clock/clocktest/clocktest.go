// Package clocktest waits in tests for what other goroutines, processes or the kernel do
// on their own: real time only bounds the wait, it is never what a test asserts (the
// fake clock in package clock is for that).
package clocktest

import (
	"testing"
	"time"
)

// Patience is how long WaitFor and Receive wait before they fail the test.
const Patience = time.Minute

// WaitFor polls cond until it holds and fails the test (naming what it waited for) when
// it does not within Patience.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Receive returns the next value from ch and fails the test (naming what it waited
// for) when none comes within Patience.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Patience):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
