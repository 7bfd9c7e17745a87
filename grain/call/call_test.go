package call

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

func TestDoTellsUnansweredCallsFromGrainAnswers(t *testing.T) {
	answer := cluster.NewGrainErrorResponse("OUT_OF_STOCK", "no units")
	tests := []struct {
		name            string
		err             error
		wantUnreachable bool
	}{
		{"success_is_no_error", nil, false},
		{"timeout_is_unreachable", errors.New("error request: request failed: context deadline exceeded"), true},
		{"grain_answer_passes_through", answer, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Do(context.Background(), DefaultPolicy(), "k", "m", func(...cluster.GrainCallOption) (int, error) { return 0, tc.err })
			if got := errors.Is(err, ErrUnreachable); got != tc.wantUnreachable {
				t.Fatalf("errors.Is(%v, ErrUnreachable) = %v, want %v", err, got, tc.wantUnreachable)
			}
			if tc.err == answer && err != answer {
				t.Fatalf("a grain's answer was changed: %v", err)
			}
		})
	}
}

// A caller that gave up (a member leaving, a shop stopping) makes no more calls.
func TestDoMakesNoCallOnACancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := Do(ctx, DefaultPolicy(), "k", "m", func(...cluster.GrainCallOption) (int, error) { called = true; return 0, nil })
	if called || !errors.Is(err, ErrDeadline) || !errors.Is(err, context.Canceled) {
		t.Fatalf("called = %v, err = %v; want no call and ErrDeadline wrapping context.Canceled", called, err)
	}
}

type request struct{ deadlineUnixMs int64 }

func (r request) GetDeadlineUnixMs() int64 { return r.deadlineUnixMs }

// The caller's deadline survives the trip through a request message, to the
// millisecond; a request without one is bounded by the fallback.
func TestServeTakesTheCallersDeadline(t *testing.T) {
	callerDeadline := time.Now().Add(time.Minute)
	caller, cancel := context.WithDeadline(context.Background(), callerDeadline)
	defer cancel()
	tests := []struct {
		name      string
		req       request
		wantUntil time.Time // the served context's deadline, to the millisecond
		wantDone  bool
	}{
		{"callers_deadline_is_the_grains", request{Deadline(caller)}, callerDeadline.Truncate(time.Millisecond), false},
		{"no_deadline_is_bounded_by_the_fallback", request{Deadline(context.Background())}, time.Now().Add(time.Hour), false},
		{"deadline_already_past_serves_a_done_context", request{time.Now().Add(-time.Second).UnixMilli()}, time.Now().Add(-time.Second), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := Serve(tc.req, time.Hour)
			defer cancel()
			got, ok := ctx.Deadline()
			if !ok {
				t.Fatal("served context has no deadline")
			}
			if d := got.Sub(tc.wantUntil); d < -time.Second || d > time.Second {
				t.Fatalf("deadline = %v, want about %v", got, tc.wantUntil)
			}
			if tc.req.deadlineUnixMs != 0 && !got.Equal(time.UnixMilli(tc.req.deadlineUnixMs)) {
				t.Fatalf("deadline = %v, want exactly the request's %v", got, time.UnixMilli(tc.req.deadlineUnixMs))
			}
			if done := ctx.Err() != nil; done != tc.wantDone {
				t.Fatalf("served context done = %v, want %v", done, tc.wantDone)
			}
		})
	}
}
