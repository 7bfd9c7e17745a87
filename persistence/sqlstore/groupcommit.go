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
	// Observe, when set, is told how each batch went.
	Observe func(Batch)
}

// Batch is how one group-commit transaction went.
type Batch struct {
	Writes  int
	Elapsed time.Duration
	// Split says a fence refused one of the writes, so the batch was written a
	// write at a time (two statements and more per write) instead of whole.
	Split bool
	// Err failed every write of the batch.
	Err error
}

// write is one fenced snapshot write waiting for its batch.
type write struct {
	kind, id string
	expected int64
	state    []byte
	// born are the first snapshots of other grains, written with this one: all
	// of them or none (an order born in its sale, with the sale's inventory
	// write). A fence that refuses any of them refuses the write.
	born []born
	// rows are written in the same transaction when the snapshot write succeeds
	// (the query views: stock levels, order rows; ledgers; events).
	rows []row
	done chan error
}

// born is a grain's first snapshot (version 1), written by another grain's write.
type born struct {
	kind, id string
	state    []byte
}

type committer struct {
	store *Store
	cfg   GroupCommit
	queue chan *write
	stop  chan struct{}
	ended sync.WaitGroup
}

// EnableGroupCommit starts batching snapshot writes as cfg says, and snapshot
// reads alongside; call it once, before the store is used. Close stops the
// committer after the writes queued.
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
	// Snapshot reads are batched the same way (loads.go), as many at once as
	// batches commit.
	s.startLoader(cfg.Committers, cfg.Timeout)
	for range cfg.Committers {
		c.ended.Add(1)
		go c.run()
	}
}

// saveFenced writes one snapshot and its rows, through the committer when group
// commit is on, else in a transaction of its own.
func (s *Store) saveFenced(ctx context.Context, kind, id string, expected int64, state []byte, rows []row) error {
	return s.saveWrite(ctx, &write{kind: kind, id: id, expected: expected, state: state, rows: rows})
}

// saveWrite writes w, through the committer when group commit is on, else in a
// transaction of its own.
func (s *Store) saveWrite(ctx context.Context, w *write) error {
	if s.committer == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error { return s.saveOne(ctx, tx, w) })
	}
	w.done = make(chan error, 1)
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
	var split bool
	// Batches committing side by side can deadlock when two of them write the same
	// row (two activations of one grain); the engine then rolls one back whole, and
	// running it again re-checks every fence.
	for attempt := 1; ; attempt++ {
		split, err = c.attempt(ctx, batch, results)
		if err == nil || !c.store.dialect.IsRetryable(err) || attempt == maxBatchAttempts {
			break
		}
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(Batch{Writes: len(batch), Elapsed: time.Since(start), Split: split, Err: err})
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

// attempt writes a batch in one transaction. It first tries it whole, with a
// constant number of statements however many writes the batch carries; when a
// fence refuses any of them (another activation moved a grain on), that
// transaction is rolled back and the batch written again a write at a time, so
// the refused writes fail alone.
func (c *committer) attempt(ctx context.Context, batch []*write, results []error) (split bool, err error) {
	clear(results)
	opts := c.store.dialect.BatchTxOptions()
	if len(batch) > 1 {
		err := c.store.inTxWith(ctx, opts, func(tx *sql.Tx) error { return c.store.saveBatch(ctx, tx, batch) })
		if !errors.Is(err, errBatchFenced) {
			return false, err
		}
	}
	return len(batch) > 1, c.store.inTxWith(ctx, opts, func(tx *sql.Tx) error {
		for i, w := range batch {
			err := c.store.saveOne(ctx, tx, w)
			if errors.Is(err, snapshot.ErrStale) {
				results[i] = err
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// saveOne writes w inside tx: its snapshot, fenced, the first snapshots it
// carries, then its rows. A fence that refuses any of the snapshots returns
// snapshot.ErrStale with nothing of w written (the rest of tx stands).
func (s *Store) saveOne(ctx context.Context, tx *sql.Tx, w *write) error {
	if len(w.born) > 0 {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT born`); err != nil {
			return err
		}
	}
	err := s.saveSnapshot(ctx, tx, w.kind, w.id, w.expected, w.state)
	for _, b := range w.born {
		if err != nil {
			break
		}
		err = s.saveSnapshot(ctx, tx, b.kind, b.id, 0, b.state)
	}
	if errors.Is(err, snapshot.ErrStale) && len(w.born) > 0 {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT born`); rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return err
	}
	return writeRows(ctx, tx, w.rows)
}

func (c *committer) close() {
	close(c.stop)
	c.ended.Wait()
}
