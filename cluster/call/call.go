// Package call is the grain-call policy: every call gets options built fresh for it
// (never protoactor's shared defaults, see PROTOACTOR.md), a deadline taken from the
// caller's context, a bounded number of attempts with a real backoff, and a metric.
package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

// Sentinel errors of grain calls.
var (
	// ErrDeadline is returned when the caller's context has no time left for a call.
	ErrDeadline = errors.New("call: no time left for the grain call")
	// ErrUnreachable wraps a call that got no answer from the grain (timeout,
	// member gone, retries spent), as opposed to an error the grain answered.
	ErrUnreachable = errors.New("call: the grain did not answer")
)

// Policy says how grain calls are made.
type Policy struct {
	// Timeout bounds a call when the caller's context has no deadline.
	Timeout time.Duration
	// TimeoutFunc, when set, gives Timeout at every call (a live setting).
	TimeoutFunc func() time.Duration
	// Attempts is how many times a call is tried when the target is unreachable
	// (dead letter, member gone). Commands are idempotent, so a retry is harmless.
	Attempts int
	// Backoff is the pause before the second attempt; it doubles for each next one.
	Backoff time.Duration
	// Observe, when set, is told the outcome of every call.
	Observe func(kind, method string, elapsed time.Duration, err error)
}

// DefaultPolicy is used where no configuration says otherwise.
func DefaultPolicy() Policy {
	return Policy{Timeout: 5 * time.Second, Attempts: 3, Backoff: 20 * time.Millisecond}
}

// Options builds the options of one call.
func (p Policy) Options(ctx context.Context) ([]cluster.GrainCallOption, error) {
	if err := ctx.Err(); err != nil { // cancelled: no time left either
		return nil, fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	timeout := p.Timeout
	if p.TimeoutFunc != nil {
		timeout = p.TimeoutFunc()
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, ErrDeadline
	}
	attempts := max(p.Attempts, 1)
	backoff := p.Backoff
	return []cluster.GrainCallOption{
		cluster.WithTimeout(timeout),
		cluster.WithRetryCount(attempts),
		cluster.WithRetryAction(func(i int) int {
			time.Sleep(backoff << i)
			return i + 1
		}),
	}, nil
}

// Do makes one grain call under the policy: f receives the options to pass to the
// generated client method.
func Do[T any](ctx context.Context, p Policy, kind, method string, f func(opts ...cluster.GrainCallOption) (T, error)) (T, error) {
	start := time.Now()
	opts, err := p.Options(ctx)
	var resp T
	if err == nil {
		resp, err = f(opts...)
		var answered *cluster.GrainErrorResponse
		if err != nil && !errors.As(err, &answered) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
	}
	if p.Observe != nil {
		p.Observe(kind, method, time.Since(start), err)
	}
	return resp, err
}
