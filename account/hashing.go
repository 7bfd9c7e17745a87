package account

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/alexedwards/argon2id"
	"golang.org/x/sync/semaphore"

	"phoneshop/fault"
)

// Hashing bounds the password hashing the shop does at once. argon2id at the
// shipped cost takes tens of milliseconds of one core and 19 MiB; run hundreds at
// once and every one of them finishes late together (a burst of sign-ups used to
// answer 500 to all). So hashes run in a pool of Workers, requests wait for a
// worker in a queue of at most Queue, for at most MaxWait and never past the time
// a hash would need to finish before the request's deadline. A request that cannot
// be served in time is refused at once with fault.ErrOverloaded and a wait to come
// back after, never started too late to answer.
type Hashing struct {
	// Workers is how many hashes run at once (0: one per core).
	Workers int
	// Queue is how many requests may wait for a worker (0: 64 per worker).
	Queue int
	// MaxWait is the longest a request waits for a worker (0: until its deadline).
	MaxWait time.Duration
}

// hashPool runs argon2id under the Hashing bounds.
type hashPool struct {
	workers int64
	queue   int64
	maxWait time.Duration
	sem     *semaphore.Weighted
	waiting atomic.Int64
	// took is the moving average of one hash, in nanoseconds: how long a worker
	// must have before the deadline, and how long the queue takes to drain.
	took atomic.Int64
}

func newHashPool(h Hashing) *hashPool {
	workers := h.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	queue := h.Queue
	if queue <= 0 {
		queue = 64 * workers
	}
	return &hashPool{workers: int64(workers), queue: int64(queue), maxWait: h.MaxWait,
		sem: semaphore.NewWeighted(int64(workers))}
}

// run runs f (one hash) on a worker, or refuses with fault.ErrOverloaded.
func (p *hashPool) run(ctx context.Context, f func()) error {
	if p.waiting.Add(1) > p.queue {
		p.waiting.Add(-1)
		return fault.Overloaded(p.drainTime(), nil)
	}
	took := time.Duration(p.took.Load())
	waitCtx, cancel := p.waitContext(ctx, took)
	err := p.sem.Acquire(waitCtx, 1)
	cancel()
	p.waiting.Add(-1)
	if err != nil {
		if ctx.Err() != nil && waitCtx.Err() == nil {
			return fault.Unavailable(ctx.Err()) // the caller gave up
		}
		return fault.Overloaded(p.drainTime(), err)
	}
	defer p.sem.Release(1)
	// The deadline may have come closer while the worker was busy elsewhere.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < took {
		return fault.Overloaded(p.drainTime(), nil)
	}
	start := time.Now()
	f()
	p.observe(time.Since(start))
	return nil
}

// waitContext bounds the wait for a worker: MaxWait, and the request's deadline
// less the time a hash takes.
func (p *hashPool) waitContext(ctx context.Context, took time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if ok {
		deadline = deadline.Add(-took)
	}
	if p.maxWait > 0 {
		if byWait := time.Now().Add(p.maxWait); !ok || byWait.Before(deadline) {
			deadline, ok = byWait, true
		}
	}
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline)
}

// observe folds one hash's time into the moving average (weight 1/8).
func (p *hashPool) observe(d time.Duration) {
	for {
		old := p.took.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if p.took.CompareAndSwap(old, next) {
			return
		}
	}
}

// drainTime is what a refused client is told to wait: about how long the queue in
// front of it takes to clear, spread over up to twice that, so that the clients
// refused together do not all come back in the same second. Nobody stays in the
// queue longer than MaxWait (who would is refused), so that bounds the estimate.
func (p *hashPool) drainTime() time.Duration {
	took := time.Duration(p.took.Load())
	if took == 0 {
		took = 50 * time.Millisecond
	}
	longest := p.maxWait
	if longest <= 0 {
		longest = unboundedWaitCap
	}
	drain := time.Duration(p.waiting.Load()+1) * took / time.Duration(p.workers)
	drain = max(min(drain, longest), time.Second)
	return drain + rand.N(drain)
}

// unboundedWaitCap bounds the wait a refused client is told when MaxWait is 0 (the
// queue then holds requests until their deadlines, 10 s by default).
const unboundedWaitCap = 10 * time.Second

// createHash hashes password on a worker.
func (s *Service) createHash(ctx context.Context, password string) (hash string, err error) {
	if perr := s.pool.run(ctx, func() { hash, err = argon2id.CreateHash(password, s.hashParams) }); perr != nil {
		return "", perr
	}
	return hash, err
}

// comparePassword checks password against hash on a worker.
func (s *Service) comparePassword(ctx context.Context, password, hash string) (ok bool, err error) {
	if perr := s.pool.run(ctx, func() { ok, err = argon2id.ComparePasswordAndHash(password, hash) }); perr != nil {
		return false, perr
	}
	return ok, err
}
