package call

import (
	"context"
	"errors"
	"testing"

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
