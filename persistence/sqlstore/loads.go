package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"phoneshop/actors/snapshot"
)

// Batched loads are group commit's read side. A flash sale activates a new order
// grain for every checkout, and each activation reads its snapshot first (an order
// id is derived from the shopper's idempotency key, so a new one cannot be told
// from a replay without looking). Loads that arrive while others are running wait
// and go together, one statement for many grains, instead of one round trip each.

// load is one snapshot read waiting for its batch.
type load struct {
	kind, id string
	done     chan loaded
}

type loaded struct {
	snap snapshot.Snapshot
	err  error
}

// maxLoadsPerBatch bounds the identities one read carries.
const maxLoadsPerBatch = 256

type loader struct {
	store   *Store
	timeout time.Duration
	queue   chan *load
	stop    chan struct{}
	ended   sync.WaitGroup
}

func (s *Store) startLoader(readers int, timeout time.Duration) {
	l := &loader{store: s, timeout: timeout, queue: make(chan *load, maxLoadsPerBatch*4), stop: make(chan struct{})}
	s.loader = l
	for range max(readers, 1) {
		l.ended.Add(1)
		go l.run()
	}
}

func (l *loader) run() {
	defer l.ended.Done()
	for {
		select {
		case first := <-l.queue:
			batch := []*load{first}
		more:
			for len(batch) < maxLoadsPerBatch {
				select {
				case next := <-l.queue:
					batch = append(batch, next)
				default:
					break more
				}
			}
			l.read(batch)
		case <-l.stop:
			for {
				select {
				case w := <-l.queue:
					w.done <- loaded{err: errClosed}
				default:
					return
				}
			}
		}
	}
}

// read answers a batch with one statement per kind of grain in it.
func (l *loader) read(batch []*load) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	byKind := map[string][]*load{}
	for _, w := range batch {
		byKind[w.kind] = append(byKind[w.kind], w)
	}
	for kind, ws := range byKind {
		found, err := l.store.readSnapshots(ctx, kind, ws)
		for _, w := range ws {
			w.done <- loaded{snap: found[w.id], err: err}
		}
	}
}

// readSnapshots reads the snapshots of ws, all of one kind, by id; an id with no
// snapshot is absent from the map (a grain never written).
func (s *Store) readSnapshots(ctx context.Context, kind string, ws []*load) (map[string]snapshot.Snapshot, error) {
	args := make([]any, 0, len(ws)+1)
	args = append(args, kind)
	for _, w := range ws {
		args = append(args, w.id)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, version, state FROM grain_snapshots WHERE kind = ? AND id IN (?`+
		strings.Repeat(", ?", len(ws)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load %d %s snapshots: %w", len(ws), kind, err)
	}
	defer rows.Close()
	found := make(map[string]snapshot.Snapshot, len(ws))
	for rows.Next() {
		var id string
		var snap snapshot.Snapshot
		if err := rows.Scan(&id, &snap.Version, &snap.State); err != nil {
			return nil, err
		}
		found[id] = snap
	}
	return found, rows.Err()
}

// loadBatched reads one snapshot through the loader.
func (s *Store) loadBatched(ctx context.Context, kind, id string) (snapshot.Snapshot, error) {
	w := &load{kind: kind, id: id, done: make(chan loaded, 1)}
	select {
	case s.loader.queue <- w:
	case <-ctx.Done():
		return snapshot.Snapshot{}, ctx.Err()
	case <-s.loader.stop:
		return snapshot.Snapshot{}, errClosed
	}
	select {
	case r := <-w.done:
		return r.snap, r.err
	case <-ctx.Done():
		return snapshot.Snapshot{}, ctx.Err()
	}
}

func (l *loader) close() {
	close(l.stop)
	l.ended.Wait()
}
