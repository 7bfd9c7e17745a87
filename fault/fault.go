// Package fault names the failures a client should retry rather than report: a
// dependency that did not answer in time, and work refused because the shop is
// busy. Every layer wraps such failures with these sentinels, so that the edge
// answers them with 503 and Retry-After, and keeps 500 for bugs.
//
// It imports nothing of the shop, so the domains, the stores, the grains and the
// edge can all use it.
package fault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the shop's transient failures.
var (
	// ErrUnavailable: a dependency (the store, a grain, a member) failed or did not
	// answer in time. Retrying later may succeed.
	ErrUnavailable = errors.New("fault: a dependency did not answer")
	// ErrOverloaded: the shop refused to start the work because it could not finish
	// it in time (a full queue, no free worker before the deadline).
	ErrOverloaded = errors.New("fault: too busy to start the work in time")
)

// DefaultRetryAfter is the wait a client is told when nothing better is known.
const DefaultRetryAfter = time.Second

// retryError carries a wait hint with a sentinel.
type retryError struct {
	kind  error
	after time.Duration
	cause error
}

func (e *retryError) Error() string {
	if e.cause != nil {
		return e.kind.Error() + ": " + e.cause.Error()
	}
	return e.kind.Error()
}

func (e *retryError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// Overloaded returns an ErrOverloaded that tells the client to come back after
// (rounded up to whole seconds by the edge).
func Overloaded(after time.Duration, cause error) error {
	return &retryError{kind: ErrOverloaded, after: after, cause: cause}
}

// Unavailable wraps cause as ErrUnavailable, unless it is nil or already one.
func Unavailable(cause error) error {
	if cause == nil || errors.Is(cause, ErrUnavailable) || errors.Is(cause, ErrOverloaded) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, cause)
}

// Transient reports whether err is a failure a retry may cure: one of the sentinels
// above, or a context that ran out of time.
func Transient(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOverloaded) ||
		errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter is the wait err asks for, or DefaultRetryAfter.
func RetryAfter(err error) time.Duration {
	var re *retryError
	if errors.As(err, &re) && re.after > 0 {
		return re.after
	}
	return DefaultRetryAfter
}
