// Package clocktest waits in tests for what other goroutines, processes or the kernel do
// on their own: real time only bounds the wait, it is never what a test asserts (the
// fake clock in package clock is for that).
package clocktest

import (
	"testing"
	"time"
)

// Patience is how long WaitFor waits before it fails the test.
const Patience = 20 * time.Second

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
