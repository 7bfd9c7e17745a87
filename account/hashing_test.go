package account

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"phoneshop/fault"
)

func TestHashPool(t *testing.T) {
	t.Run("never_more_hashes_at_once_than_workers", func(t *testing.T) {
		p := newHashPool(Hashing{Workers: 2, Queue: 100})
		var running, most atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := p.run(context.Background(), func() {
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(time.Millisecond)
					running.Add(-1)
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if most.Load() != 2 {
			t.Fatalf("%d hashes ran at once; want the 2 workers busy and never more", most.Load())
		}
	})
	t.Run("a_full_queue_refuses_at_once_with_a_wait", func(t *testing.T) {
		p := newHashPool(Hashing{Workers: 1, Queue: 1})
		release := make(chan struct{})
		started := make(chan struct{})
		go func() { _ = p.run(context.Background(), func() { close(started); <-release }) }()
		<-started
		waiting := make(chan error, 1)
		go func() { waiting <- p.run(context.Background(), func() {}) }() // takes the one queue place
		for p.waiting.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		err := p.run(context.Background(), func() { t.Error("a refused hash ran") })
		if !errors.Is(err, fault.ErrOverloaded) || fault.RetryAfter(err) < time.Second {
			t.Fatalf("over the queue: %v (retry after %s); want fault.ErrOverloaded with a wait of 1s or more", err, fault.RetryAfter(err))
		}
		if waited := time.Since(start); waited > time.Second {
			t.Fatalf("refusal took %s; a full queue refuses at once", waited)
		}
		close(release)
		if err := <-waiting; err != nil {
			t.Fatalf("the queued hash: %v", err)
		}
	})
	t.Run("no_hash_starts_too_late_for_the_deadline", func(t *testing.T) {
		p := newHashPool(Hashing{Workers: 1})
		p.took.Store(int64(200 * time.Millisecond)) // what one hash is known to take
		release := make(chan struct{})
		started := make(chan struct{})
		go func() { _ = p.run(context.Background(), func() { close(started); <-release }) }()
		<-started
		// 300 ms left, a hash takes 200: the worker must be free within 100 ms, and is not.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := p.run(ctx, func() { t.Error("a hash started too late to answer") })
		if !errors.Is(err, fault.ErrOverloaded) {
			t.Fatalf("got %v; want fault.ErrOverloaded before the deadline", err)
		}
		if ctx.Err() != nil {
			t.Fatal("the refusal came only at the deadline; it must leave time to answer")
		}
		close(release)
	})
	t.Run("max_wait_bounds_the_wait", func(t *testing.T) {
		p := newHashPool(Hashing{Workers: 1, MaxWait: 50 * time.Millisecond})
		release := make(chan struct{})
		started := make(chan struct{})
		go func() { _ = p.run(context.Background(), func() { close(started); <-release }) }()
		<-started
		err := p.run(context.Background(), func() { t.Error("ran past MaxWait") })
		if !errors.Is(err, fault.ErrOverloaded) {
			t.Fatalf("got %v; want fault.ErrOverloaded after MaxWait", err)
		}
		close(release)
	})
	t.Run("the_wait_told_is_bounded_by_the_longest_wait", func(t *testing.T) {
		p := newHashPool(Hashing{Workers: 2, MaxWait: 5 * time.Second})
		p.took.Store(int64(time.Second)) // a slow hash
		p.waiting.Store(500)             // a long queue: 250 s to drain at that pace
		for range 100 {
			if d := p.drainTime(); d < 5*time.Second || d > 10*time.Second {
				t.Fatalf("told to wait %s; want 5s to 10s: nobody stays queued past MaxWait", d)
			}
		}
		p.waiting.Store(0)
		p.took.Store(int64(time.Millisecond))
		if d := p.drainTime(); d < time.Second || d > 2*time.Second {
			t.Fatalf("told to wait %s with an empty queue; want 1s to 2s", d)
		}
	})
}
