package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Closed configures a closed-loop run: Concurrency workers, each starting its
// next task as soon as the previous one finished. The run stops issuing tasks
// at whichever limit comes first; 0 means no limit of that kind, but at least
// one must be set.
type Closed struct {
	Concurrency int
	Duration    time.Duration
	Requests    int64
}

// Validate reports what is wrong with the configuration.
func (c Closed) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("loadgen: closed loop needs Concurrency >= 1, got %d", c.Concurrency)
	case c.Duration < 0 || c.Requests < 0:
		return errors.New("loadgen: closed loop limits must not be negative")
	case c.Duration == 0 && c.Requests == 0:
		return errors.New("loadgen: closed loop needs a Duration or a Requests limit")
	}
	return nil
}

// RunClosed runs a closed loop and returns its statistics. Each worker calls
// next(worker) for a task, runs it and records its latency. Tasks still in
// flight when a limit is reached are waited for; they run under ctx, so
// cancelling ctx ends the run early. RunClosed panics when cfg is invalid.
func RunClosed(ctx context.Context, cfg Closed, next func(worker int) Task, progress Progress) *Stats {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if progress == nil {
		progress = Quiet
	}
	total := cfg.Requests
	if total == 0 {
		total = -1
	}
	progress.Start(total, fmt.Sprintf("closed c=%d", cfg.Concurrency))
	defer progress.Finish()

	stats := NewStats()
	deadline := stats.start.Add(cfg.Duration)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				if cfg.Duration > 0 && !time.Now().Before(deadline) {
					return
				}
				// Claiming a ticket before the task keeps the request
				// limit exact however the workers interleave.
				if cfg.Requests > 0 && issued.Add(1) > cfg.Requests {
					return
				}
				task := next(w)
				began := time.Now()
				o := task(ctx)
				recordUnlessAborted(ctx, stats, o, time.Since(began))
				progress.Add(1)
			}
		})
	}
	wg.Wait()
	stats.Stop()
	return stats
}

// Open configures an open-loop run: tasks are started at Rate per second
// whether or not earlier ones have finished, for Duration (0: until the
// context is cancelled). At most MaxInFlight tasks run at once (0:
// DefaultMaxInFlight); a task due while that many are outstanding is not
// started but counted as an OpDropped error with code CodeOverload.
type Open struct {
	Rate        float64
	Duration    time.Duration
	MaxInFlight int
}

// DefaultMaxInFlight bounds an open loop whose MaxInFlight is 0, so a stalled
// server cannot make the generator pile up goroutines without limit.
const DefaultMaxInFlight = 10_000

// Validate reports what is wrong with the configuration.
func (c Open) Validate() error {
	switch {
	case !(c.Rate > 0):
		return fmt.Errorf("loadgen: open loop needs Rate > 0, got %v", c.Rate)
	case c.Duration < 0:
		return errors.New("loadgen: open loop Duration must not be negative")
	case c.MaxInFlight < 0:
		return errors.New("loadgen: open loop MaxInFlight must not be negative")
	}
	return nil
}

// RunOpen runs an open loop and returns its statistics. Task i is due at
// start + i/Rate; next(i) is called from the scheduling goroutine when it is
// due (so it should be cheap) and not at all for a dropped task. Latency is
// measured from the time the task was due, not from when it actually started,
// so a stall of the generator or a backlog shows up in the figures instead of
// being hidden (coordinated omission). RunOpen waits for tasks in flight and
// panics when cfg is invalid.
func RunOpen(ctx context.Context, cfg Open, next func(i int64) Task, progress Progress) *Stats {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if progress == nil {
		progress = Quiet
	}
	limit := cfg.MaxInFlight
	if limit == 0 {
		limit = DefaultMaxInFlight
	}
	total := int64(-1)
	if cfg.Duration > 0 {
		total = int64(cfg.Duration.Seconds() * cfg.Rate)
	}
	progress.Start(total, fmt.Sprintf("open %.0f/s", cfg.Rate))
	defer progress.Finish()

	stats := NewStats()
	start := stats.start
	interval := float64(time.Second) / cfg.Rate
	slots := make(chan struct{}, limit)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var wg sync.WaitGroup

schedule:
	for i := int64(0); ; i++ {
		offset := time.Duration(float64(i) * interval)
		if cfg.Duration > 0 && offset >= cfg.Duration {
			break
		}
		due := start.Add(offset)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}

		select {
		case slots <- struct{}{}:
		default:
			stats.recordDropped()
			progress.Add(1)
			continue
		}
		task := next(i)
		wg.Go(func() {
			defer func() { <-slots }()
			o := task(ctx)
			recordUnlessAborted(ctx, stats, o, time.Since(due))
			progress.Add(1)
		})
	}
	wg.Wait()
	stats.Stop()
	return stats
}

// recordUnlessAborted records o unless it failed only because the caller
// cancelled the run; such failures say nothing about the system under test.
func recordUnlessAborted(ctx context.Context, stats *Stats, o Outcome, latency time.Duration) {
	if ctx.Err() != nil && o.Err != nil &&
		(errors.Is(o.Err, context.Canceled) || errors.Is(o.Err, context.DeadlineExceeded)) {
		return
	}
	stats.Record(o, latency)
}
