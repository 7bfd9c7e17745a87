package blocking_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/cluster/consul/blocking"
)

// step is one scripted answer of Consul: an index, or an error.
type step struct {
	index uint64
	err   error
}

// script is a fake Consul: it answers the loop's queries with its steps in turn and
// records what each query asked for.
type script struct {
	steps    []step
	asked    []uint64 // WaitIndex of each query
	answered []uint64 // the index of each answer handed to Answer
	failed   []error
	resets   int
}

// loop runs the script to its end: Answer stops the loop after the last step.
func (s *script) loop() blocking.Loop[uint64] {
	return blocking.Loop[uint64]{
		Query: func(opts *api.QueryOptions) (uint64, *api.QueryMeta, error) {
			st := s.steps[len(s.asked)]
			s.asked = append(s.asked, opts.WaitIndex)
			if st.err != nil {
				return 0, nil, st.err
			}
			return st.index, &api.QueryMeta{LastIndex: st.index}, nil
		},
		Answer: func(index uint64) bool {
			s.answered = append(s.answered, index)
			return len(s.asked) < len(s.steps)
		},
		Failed:      func(err error) { s.failed = append(s.failed, err) },
		Reset:       func() { s.resets++ },
		RetryAfter:  time.Millisecond,
		MinInterval: time.Nanosecond,
	}
}

func runScript(t *testing.T, steps ...step) *script {
	t.Helper()
	s := &script{steps: steps}
	s.loop().Run(context.Background())
	if len(s.asked) != len(steps) {
		t.Fatalf("the loop asked %d queries, want the script's %d", len(s.asked), len(steps))
	}
	return s
}

func TestLoopWaitsOnTheIndexOfTheLastAnswer(t *testing.T) {
	s := runScript(t, step{index: 5}, step{index: 7}, step{index: 7}, step{index: 9})
	if want := []uint64{0, 5, 7, 7}; !slices.Equal(s.asked, want) {
		t.Errorf("wait indexes %v, want %v", s.asked, want)
	}
	// An answer at the end of the wait, with the same index, is handed over too:
	// a caller may wait for a deadline of its own (Wake).
	if want := []uint64{5, 7, 7, 9}; !slices.Equal(s.answered, want) {
		t.Errorf("answers %v, want %v", s.answered, want)
	}
	if s.resets != 0 {
		t.Errorf("%d resets, want none", s.resets)
	}
}

func TestLoopStartsOverWhenTheIndexGoesBackwards(t *testing.T) {
	s := runScript(t, step{index: 10}, step{index: 4}, step{index: 4}, step{index: 6})
	if want := []uint64{0, 10, 0, 4}; !slices.Equal(s.asked, want) {
		t.Errorf("wait indexes %v, want %v (back to 0 once the index went backwards)", s.asked, want)
	}
	if s.resets != 1 {
		t.Errorf("%d resets, want 1", s.resets)
	}
	if want := []uint64{10, 4, 6}; !slices.Equal(s.answered, want) {
		t.Errorf("answers %v, want %v (the one that went backwards is read again)", s.answered, want)
	}
}

// Consul's documentation: an index of 0 is a bug of Consul's, and a query on it
// returns at once; 1 is always safe to wait on.
func TestLoopNeverWaitsOnIndexZero(t *testing.T) {
	s := runScript(t, step{index: 0}, step{index: 0}, step{index: 3})
	if want := []uint64{0, 1, 1}; !slices.Equal(s.asked, want) {
		t.Errorf("wait indexes %v, want %v", s.asked, want)
	}
	if s.resets != 0 {
		t.Errorf("%d resets, want none: 0 after 0 did not go backwards", s.resets)
	}
}

func TestLoopReadsAfreshAfterAFailure(t *testing.T) {
	boom := errors.New("connection refused")
	s := runScript(t, step{index: 9}, step{err: boom}, step{index: 12}, step{index: 13})
	if want := []uint64{0, 9, 0, 12}; !slices.Equal(s.asked, want) {
		t.Errorf("wait indexes %v, want %v (0 after the failure)", s.asked, want)
	}
	if len(s.failed) != 1 || !errors.Is(s.failed[0], boom) {
		t.Errorf("failed with %v, want [%v]", s.failed, boom)
	}
	if s.resets != 1 {
		t.Errorf("%d resets, want 1", s.resets)
	}
}

// TestLoopPausesAfterAFailure: a failing agent is asked again after RetryAfter, not
// in a busy loop. (A lower bound on the time taken: a slow machine only adds to it.)
func TestLoopPausesAfterAFailure(t *testing.T) {
	const retryAfter = 100 * time.Millisecond
	boom := errors.New("connection refused")
	s := &script{steps: []step{{err: boom}, {err: boom}, {err: boom}, {index: 1}}}
	l := s.loop()
	l.RetryAfter = retryAfter
	start := time.Now()
	l.Run(context.Background())
	if elapsed := time.Since(start); elapsed < 3*retryAfter {
		t.Errorf("3 failures took %v, want at least 3 pauses of %v", elapsed, retryAfter)
	}
}

// TestLoopRateLimitsAChurningAnswer: answers that keep changing degrade into
// polling at MinInterval once the burst of 2 is spent.
func TestLoopRateLimitsAChurningAnswer(t *testing.T) {
	const interval = 50 * time.Millisecond
	var steps []step
	for i := range 8 {
		steps = append(steps, step{index: uint64(i + 1)})
	}
	s := &script{steps: steps}
	l := s.loop()
	l.MinInterval = interval
	start := time.Now()
	l.Run(context.Background())
	// 8 queries: the first asks at once, the 7 that follow an early answer spend
	// tokens, 2 from the burst: at least 5 intervals (a little less for the rate
	// limiter's rounding).
	if elapsed, least := time.Since(start), 5*interval-interval/5; elapsed < least {
		t.Errorf("8 churning answers took %v, want at least %v", elapsed, least)
	}
}

// TestLoopDoesNotRateLimitQueriesThatWaited: a query that waited its whole wait
// spends no token, so polling an answer that does not change never meets the rate
// limit, and the query after a change goes at once.
func TestLoopDoesNotRateLimitQueriesThatWaited(t *testing.T) {
	const wait = 5 * time.Millisecond
	var steps []step
	for range 6 {
		steps = append(steps, step{index: 7})
	}
	s := &script{steps: steps}
	l := s.loop()
	l.Wait, l.MinInterval = wait, time.Hour
	query := l.Query
	l.Query = func(opts *api.QueryOptions) (uint64, *api.QueryMeta, error) {
		time.Sleep(opts.WaitTime) // nothing changed: Consul answers at the end of the wait
		return query(opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.Run(ctx)
	if len(s.answered) != len(steps) {
		t.Fatalf("%d of %d queries that waited their whole wait were answered before the rate limit held the loop (MinInterval 1h)", len(s.answered), len(steps))
	}
}

// TestLoopQueryDeadline: each query waits Wait (or sooner, when Wake asks) and is
// given up Slack after Consul's longest answer (the wait and its jitter of a
// sixteenth).
func TestLoopQueryDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wake     time.Duration
		wantWait time.Duration
	}{
		{"the_wait", 0, time.Hour},
		{"sooner_when_woken", 16 * time.Minute, 16 * time.Minute},
		{"never_later_when_woken", 2 * time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const slack = 5 * time.Minute
			var gotWait, gotTimeout time.Duration
			blocking.Loop[int]{
				Query: func(opts *api.QueryOptions) (int, *api.QueryMeta, error) {
					gotWait = opts.WaitTime
					if deadline, ok := opts.Context().Deadline(); ok {
						gotTimeout = time.Until(deadline)
					}
					return 0, &api.QueryMeta{LastIndex: 1}, nil
				},
				Answer: func(int) bool { return false },
				Wait:   time.Hour,
				Wake:   func() time.Duration { return tc.wake },
				Slack:  slack,
			}.Run(context.Background())
			if gotWait != tc.wantWait {
				t.Errorf("wait %v, want %v", gotWait, tc.wantWait)
			}
			// The deadline was set just before the query: allow a minute for a slow machine.
			want := tc.wantWait + tc.wantWait/16 + slack
			if gotTimeout > want || gotTimeout < want-time.Minute {
				t.Errorf("query deadline in %v, want %v", gotTimeout, want)
			}
		})
	}
}

// TestLoopGivesUpOnAQueryThatNeverAnswers: a stalled agent holds the query until its
// deadline; the loop then says so and asks again.
func TestLoopGivesUpOnAQueryThatNeverAnswers(t *testing.T) {
	var failed []error
	calls := 0
	blocking.Loop[int]{
		Query: func(opts *api.QueryOptions) (int, *api.QueryMeta, error) {
			calls++
			if calls == 1 {
				<-opts.Context().Done() // stalled: only the deadline ends it
				return 0, nil, opts.Context().Err()
			}
			return 0, &api.QueryMeta{LastIndex: 1}, nil
		},
		Answer:      func(int) bool { return false },
		Failed:      func(err error) { failed = append(failed, err) },
		Wait:        16 * time.Millisecond,
		Slack:       time.Millisecond,
		RetryAfter:  time.Millisecond,
		MinInterval: time.Nanosecond,
	}.Run(context.Background())
	if len(failed) != 1 || !errors.Is(failed[0], context.DeadlineExceeded) {
		t.Fatalf("failed with %v, want one deadline exceeded", failed)
	}
	if calls != 2 {
		t.Fatalf("%d queries, want 2: the loop asks again after giving up", calls)
	}
}

// TestLoopEndsWithItsContext: Run returns once ctx ends, whether it is in a query, in
// the pause after a failure or waiting for the rate limit, and a query cut short by
// the end is no failure.
func TestLoopEndsWithItsContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		queries int // asked before the end
		query   func(opts *api.QueryOptions) (int, *api.QueryMeta, error)
		loop    func(*blocking.Loop[int])
	}{
		{"in_a_query", 1, func(opts *api.QueryOptions) (int, *api.QueryMeta, error) {
			<-opts.Context().Done()
			return 0, nil, opts.Context().Err()
		}, func(*blocking.Loop[int]) {}},
		{"in_the_pause_after_a_failure", 1, func(*api.QueryOptions) (int, *api.QueryMeta, error) {
			return 0, nil, errors.New("connection refused")
		}, func(l *blocking.Loop[int]) { l.RetryAfter = time.Hour }},
		{"waiting_for_the_rate_limit", 2, func(*api.QueryOptions) (int, *api.QueryMeta, error) {
			return 0, &api.QueryMeta{LastIndex: 1}, nil
		}, func(l *blocking.Loop[int]) { l.MinInterval = time.Hour }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			queries := make(chan struct{}, 100)
			var failed []error
			l := blocking.Loop[int]{
				Query: func(opts *api.QueryOptions) (int, *api.QueryMeta, error) {
					select {
					case queries <- struct{}{}:
					default: // a loop that does not wait has told enough
					}
					return tc.query(opts)
				},
				Answer: func(int) bool { return true },
				Failed: func(err error) { failed = append(failed, err) },
				Wait:   time.Hour,
			}
			tc.loop(&l)
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.Run(ctx)
			}()
			for range tc.queries {
				<-queries
			}
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30s of its context's end")
			}
			if tc.name == "in_a_query" && len(failed) != 0 {
				t.Errorf("a query cut short by the end reported as failed: %v", failed)
			}
		})
	}
}
