// Package fakekit holds what the loopback fakes of scripts/ share: a call
// recorder and a failure injector. Each fake renders its own error
// envelope; fakekit only decides whether a call should fail or wait.
package fakekit

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Recorder keeps every call a fake served, in arrival order. It is safe for
// concurrent use. T is the fake's own call record type.
type Recorder[T any] struct {
	mu    sync.Mutex
	calls []T
}

// Add appends one call.
func (r *Recorder[T]) Add(c T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// All returns a copy of every call recorded so far.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Count returns how many recorded calls satisfy match; a nil match counts
// them all.
func (r *Recorder[T]) Count(match func(T) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if match == nil {
		return len(r.calls)
	}
	n := 0
	for _, c := range r.calls {
		if match(c) {
			n++
		}
	}
	return n
}

// Reset forgets every recorded call.
func (r *Recorder[T]) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// Faults is a failure injector: forced error statuses for the next calls,
// forced authentication failures, and a delay before answering. The zero
// value injects nothing. It is safe for concurrent use.
type Faults struct {
	mu         sync.Mutex
	failN      int
	failStatus int
	authN      int
	delay      time.Duration
}

// FailNext makes the next n calls fail with the given HTTP status (a 5xx in
// the usual case) before any other check. n <= 0 clears the injection.
func (f *Faults) FailNext(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failN, f.failStatus = max(n, 0), status
}

// RejectAuthNext makes the next n calls fail authentication even when their
// credentials are right.
func (f *Faults) RejectAuthNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authN = max(n, 0)
}

// SetDelay makes every following call wait d before it is answered; 0
// removes the delay.
func (f *Faults) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = max(d, 0)
}

// TakeFailure reports whether this call must fail and with which status,
// consuming one forced failure.
func (f *Faults) TakeFailure() (status int, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN == 0 {
		return 0, false
	}
	f.failN--
	status = f.failStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return status, true
}

// TakeAuthFailure reports whether this call must fail authentication,
// consuming one forced authentication failure.
func (f *Faults) TakeAuthFailure() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authN == 0 {
		return false
	}
	f.authN--
	return true
}

// Wait sleeps for the configured delay, or until ctx or stop ends. It
// returns false when the wait was cut short.
func (f *Faults) Wait(ctx context.Context, stop <-chan struct{}) bool {
	f.mu.Lock()
	d := f.delay
	f.mu.Unlock()
	if d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
