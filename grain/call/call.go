// Package call is the grain-call policy: every call gets options built fresh for it
// (never protoactor's shared defaults, see PROTOACTOR.md), a deadline taken from the
// caller's context, a bounded number of attempts with a real backoff, and a metric.
//
// protoactor-go carries no context across a grain call (upstream #1115), so the
// caller's deadline travels in the request message itself: every grain request has
// a deadline_unix_ms field, which the caller fills with Deadline(ctx) and the grain
// turns back into a context with Serve. The deadline an edge request was given thus
// bounds every hop it causes (edge -> cart -> order -> inventory) and every store
// call on the way.
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

// DefaultTimeout bounds a call when neither the caller nor the policy says otherwise.
const DefaultTimeout = 5 * time.Second

// DefaultPolicy is used where no configuration says otherwise.
func DefaultPolicy() Policy {
	return Policy{Timeout: DefaultTimeout, Attempts: 3, Backoff: 20 * time.Millisecond}
}

// CallTimeout is the timeout of a call whose caller has no deadline: TimeoutFunc's,
// else Timeout, else DefaultTimeout (a zero Policy still bounds its calls).
func (p Policy) CallTimeout() time.Duration {
	timeout := p.Timeout
	if p.TimeoutFunc != nil {
		timeout = p.TimeoutFunc()
	}
	if timeout <= 0 {
		return DefaultTimeout
	}
	return timeout
}

// Deadlined is a grain request message: it carries its caller's deadline.
type Deadlined interface {
	GetDeadlineUnixMs() int64
}

// Deadline is what a caller puts in a request's deadline_unix_ms: ctx's deadline in
// Unix milliseconds, or 0 when ctx has none. Members' clocks are kept in step by
// NTP; a skew between them shifts the grain's deadline by as much.
func Deadline(ctx context.Context) int64 {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return dl.UnixMilli()
}

// Serve returns the context a grain serves req in: it ends at the caller's deadline
// carried in req or, when req carries none (a caller from before deadlines
// travelled, or one without a deadline), after fallback, normally the grain-call
// timeout (Policy.CallTimeout). Store calls and onward grain calls made for req
// take this context, so none outlives the caller's patience. A deadline already
// past gives a context that is already done: the grain does no work for a caller
// that has given up.
func Serve(req Deadlined, fallback time.Duration) (context.Context, context.CancelFunc) {
	if ms := req.GetDeadlineUnixMs(); ms > 0 {
		return context.WithDeadline(context.Background(), time.UnixMilli(ms))
	}
	if fallback <= 0 {
		fallback = DefaultTimeout
	}
	return context.WithTimeout(context.Background(), fallback)
}

// Options builds the options of one call.
func (p Policy) Options(ctx context.Context) ([]cluster.GrainCallOption, error) {
	if err := ctx.Err(); err != nil { // cancelled: no time left either
		return nil, fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	timeout := p.CallTimeout()
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
