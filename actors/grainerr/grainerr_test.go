package grainerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"phoneshop/actors/snapshot"
	"phoneshop/fault"
	"phoneshop/grain/call"
	"phoneshop/protos/reasonpb"
)

func TestUnexpectedAnswersUnavailableOnlyForWhatARetryCures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want reasonpb.ErrorReason
	}{
		{"store_outage_is_unavailable", fault.Unavailable(errors.New("connection refused")), reasonpb.ErrorReason_UNAVAILABLE},
		{"store_deadline_is_unavailable", fmt.Errorf("load: %w", context.DeadlineExceeded), reasonpb.ErrorReason_UNAVAILABLE},
		{"overload_is_unavailable", fault.Overloaded(0, nil), reasonpb.ErrorReason_UNAVAILABLE},
		{"unanswered_grain_call_is_unavailable", fmt.Errorf("%w: timeout", call.ErrUnreachable), reasonpb.ErrorReason_UNAVAILABLE},
		{"no_time_left_for_a_call_is_unavailable", call.ErrDeadline, reasonpb.ErrorReason_UNAVAILABLE},
		{"fenced_write_is_unavailable", fmt.Errorf("save: %w", snapshot.ErrStale), reasonpb.ErrorReason_UNAVAILABLE},
		{"another_grain_unavailable_is_unavailable", fmt.Errorf("inventory: %w", reasonpb.ErrUnavailable("busy")), reasonpb.ErrorReason_UNAVAILABLE},
		{"another_grain_internal_is_internal", fmt.Errorf("inventory: %w", reasonpb.ErrInternal("bug")), reasonpb.ErrorReason_INTERNAL},
		{"another_grain_invalid_is_internal", fmt.Errorf("inventory: %w", reasonpb.ErrInvalid("bad quantity")), reasonpb.ErrorReason_INTERNAL},
		{"corrupt_snapshot_is_internal", errors.New("decode snapshot v3: unexpected EOF"), reasonpb.ErrorReason_INTERNAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Unexpected(slog.New(slog.DiscardHandler), tc.err)
			if got.Reason != tc.want.String() {
				t.Fatalf("Unexpected(%v).Reason = %s, want %s", tc.err, got.Reason, tc.want)
			}
		})
	}
}
