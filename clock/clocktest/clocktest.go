// Package clocktest runs services in tests and waits for what other goroutines, processes
// or the kernel do on their own: real time only bounds the wait, it is never what a test asserts (the
// fake clock in package clock is for that).
package clocktest

import (
	"context"
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

// Run runs run in a goroutine until the test ends: at cleanup it cancels run's context,
// waits for it to return and fails the test if it returned an error.
func Run(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
