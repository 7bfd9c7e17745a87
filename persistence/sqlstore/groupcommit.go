package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"phoneshop/actors/snapshot"
)

// GroupCommit says how snapshot writes are batched. With MaxWrites above 1, writes
// that arrive while a transaction is committing wait for the next one, which
// carries them all: one commit (one fsync) for many grains' writes. Each writer is
// answered only after the transaction holding its write has committed.
type GroupCommit struct {
	// MaxWrites is the most snapshot writes one transaction carries; 1 or less
	// writes each in a transaction of its own, concurrently.
	MaxWrites int
	// MaxWait is how long a batch may wait for more writes after its first; 0
	// takes what is queued and commits at once (batches then grow with the load).
	MaxWait time.Duration
	// Committers is how many batches may commit at once (each on its own
	// connection); 1 when the engine has a single writer (SQLite).
	Committers int
	// Timeout bounds one batch's transaction.
	Timeout time.Duration
	// Observe, when set, is told each committed batch's size and duration.
	Observe func(writes int, elapsed time.Duration, err error)
}

// write is one fenced snapshot write waiting for its batch.
type write struct {
	kind, id string
	expected int64
	state    []byte
	// after runs in the same transaction when the snapshot write succeeds (the
	// query views: stock levels, order rows).
	after func(ctx context.Context, tx *sql.Tx) error
	done  chan error
}

type committer struct {
	store *Store
	cfg   GroupCommit
	queue chan *write
	stop  chan struct{}
	ended sync.WaitGroup
}

// EnableGroupCommit starts batching snapshot writes as cfg says; call it once,
// before the store is used. Close stops the committer after the writes queued.
func (s *Store) EnableGroupCommit(cfg GroupCommit) {
	if cfg.MaxWrites <= 1 {
		return
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Committers = max(cfg.Committers, 1)
	c := &committer{store: s, cfg: cfg, queue: make(chan *write, cfg.MaxWrites*4), stop: make(chan struct{})}
	s.committer = c
	for range cfg.Committers {
		c.ended.Add(1)
		go c.run()
	}
}

// saveFenced writes one snapshot and its views, through the committer when group
// commit is on, else in a transaction of its own.
func (s *Store) saveFenced(ctx context.Context, kind, id string, expected int64, state []byte, after func(ctx context.Context, tx *sql.Tx) error) error {
	if s.committer == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.saveSnapshot(ctx, tx, kind, id, expected, state); err != nil {
				return err
			}
			if after != nil {
				return after(ctx, tx)
			}
			return nil
		})
	}
	w := &write{kind: kind, id: id, expected: expected, state: state, after: after, done: make(chan error, 1)}
	select {
	case s.committer.queue <- w:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.committer.stop:
		return errClosed
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		// The write may still commit; the caller treats it as failed and reloads.
		return ctx.Err()
	}
}

func (c *committer) run() {
	defer c.ended.Done()
	for {
		var first *write
		select {
		case first = <-c.queue:
		case <-c.stop:
			// Answer what is still queued, then end.
			for {
				select {
				case w := <-c.queue:
					c.commit([]*write{w})
				default:
					return
				}
			}
		}
		c.commit(c.collect(first))
	}
}

// collect gathers the writes queued behind first, up to MaxWrites, waiting at most
// MaxWait for more.
func (c *committer) collect(first *write) []*write {
	batch := []*write{first}
	var deadline <-chan time.Time
	if c.cfg.MaxWait > 0 {
		t := time.NewTimer(c.cfg.MaxWait)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < c.cfg.MaxWrites {
		select {
		case w := <-c.queue:
			batch = append(batch, w)
			continue
		default:
		}
		if deadline == nil {
			break
		}
		select {
		case w := <-c.queue:
			batch = append(batch, w)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// commit writes a batch in one transaction. A write refused by its fence fails
// alone (its statement changed nothing); any other error fails the whole batch.
func (c *committer) commit(batch []*write) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	results := make([]error, len(batch))
	var err error
	// Batches committing side by side can deadlock when two of them write the same
	// row (two activations of one grain); the engine then rolls one back whole, and
	// running it again re-checks every fence.
	for attempt := 1; ; attempt++ {
		err = c.attempt(ctx, batch, results)
		if err == nil || !c.store.dialect.IsRetryable(err) || attempt == maxBatchAttempts {
			break
		}
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(len(batch), time.Since(start), err)
	}
	for i, w := range batch {
		if err != nil {
			w.done <- err
			continue
		}
		w.done <- results[i]
	}
}

// maxBatchAttempts bounds the retries of a batch the engine rolled back.
const maxBatchAttempts = 4

func (c *committer) attempt(ctx context.Context, batch []*write, results []error) error {
	clear(results)
	return c.store.inTxWith(ctx, c.store.dialect.BatchTxOptions(), func(tx *sql.Tx) error {
		for i, w := range batch {
			err := c.store.saveSnapshot(ctx, tx, w.kind, w.id, w.expected, w.state)
			if errors.Is(err, snapshot.ErrStale) {
				results[i] = err
				continue
			}
			if err != nil {
				return err
			}
			if w.after != nil {
				if err := w.after(ctx, tx); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (c *committer) close() {
	close(c.stop)
	c.ended.Wait()
}
