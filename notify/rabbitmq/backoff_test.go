package rabbitmq

import (
	"testing"
	"time"
)

func TestBackoffDoublesFromFirstUpToMax(t *testing.T) {
	first, most := 100*time.Millisecond, 10*time.Second
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{7, 6400 * time.Millisecond},
		{8, 10 * time.Second},
		{1000, 10 * time.Second},
	} {
		if got := backoff(first, most, tc.failures); got != tc.want {
			t.Errorf("backoff after %d failures = %s, want %s", tc.failures, got, tc.want)
		}
	}
}
