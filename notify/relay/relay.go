// Package relay publishes the outbox: it claims events written with the grains'
// snapshots, publishes them, and marks them published only once the broker has
// confirmed them. Several relays may run at once (one per node): each event is
// leased to one of them, so in normal operation it is published once; a relay
// that dies leaves its events to the others when its lease runs out, and those may
// then be published twice (consumers recognise the Message-Id).
//
// The relay also keeps the outbox from growing without end: published events are
// deleted once they are older than a retention (7 days by default), in small
// batches, by every relay (the deletes are idempotent, and each batch is one short
// transaction).
package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"phoneshop/notify/outbox"
)

// Store is where the events wait (persistence/sqlstore).
type Store interface {
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]outbox.Event, error)
	MarkPublished(ctx context.Context, ids []string, now time.Time) error
	// PurgePublishedEvents deletes up to limit events published before before
	// and says how many.
	PurgePublishedEvents(ctx context.Context, before time.Time, limit int) (int, error)
}

// Publisher publishes a batch and says which events the broker confirmed; an event
// not confirmed (nacked, returned as unroutable, or lost with the connection) is
// not, and err says why.
type Publisher interface {
	Publish(ctx context.Context, events []outbox.Event) (confirmed []string, err error)
}

// Config tunes a relay; zero values take the defaults below.
type Config struct {
	// Batch is how many events one pass claims (default 100).
	Batch int
	// Lease is how long a claimed event is the relay's alone (default 30 s). It
	// must outlast a pass: publishing a batch and waiting for its confirms.
	Lease time.Duration
	// Idle is the wait after a pass that found nothing (default 200 ms).
	Idle time.Duration
	// FirstRetry and MaxRetry bound the backoff after a failed pass (defaults
	// 100 ms and 10 s): a broker or store that is down is not hammered.
	FirstRetry, MaxRetry time.Duration
	// Retention is how long a published event is kept (default
	// DefaultRetention): ops can see what went out recently; after that it is
	// only weight.
	Retention time.Duration
	// PurgeEvery is how often the relay deletes what outlived Retention
	// (default 10 min), PurgeBatch events per statement (default 1,000).
	PurgeEvery time.Duration
	PurgeBatch int
	Now        func() time.Time
	Logger     *slog.Logger
}

// DefaultRetention is how long published events stay in the outbox.
const DefaultRetention = 7 * 24 * time.Hour

// Relay moves events from the store to the broker.
type Relay struct {
	store Store
	pub   Publisher
	cfg   Config
}

// New returns a relay from store to pub.
func New(store Store, pub Publisher, cfg Config) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 200 * time.Millisecond
	}
	if cfg.FirstRetry <= 0 {
		cfg.FirstRetry = 100 * time.Millisecond
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 10 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.PurgeEvery <= 0 {
		cfg.PurgeEvery = 10 * time.Minute
	}
	if cfg.PurgeBatch <= 0 {
		cfg.PurgeBatch = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{store: store, pub: pub, cfg: cfg}
}

// markTimeout bounds recording a batch's confirms. It runs even when the relay is
// stopping: the events are published, and an event not marked is published again.
const markTimeout = 5 * time.Second

// Once runs one pass: claim a batch, publish it, mark what the broker confirmed.
// It reports how many events were published; an error means some were not (they
// are claimed again when their lease runs out).
func (r *Relay) Once(ctx context.Context) (published int, err error) {
	events, err := r.store.ClaimEvents(ctx, r.cfg.Now(), r.cfg.Lease, r.cfg.Batch)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	// The publish may not outlive the lease, or another relay could publish the
	// same events meanwhile.
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Lease)
	defer cancel()
	confirmed, perr := r.pub.Publish(pctx, events)
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer mcancel()
	if err := r.store.MarkPublished(mctx, confirmed, r.cfg.Now()); err != nil {
		return 0, errors.Join(perr, err)
	}
	return len(confirmed), perr
}

// Purge deletes the published events older than the retention, a batch at a
// time until a batch comes back short, and says how many it deleted.
func (r *Relay) Purge(ctx context.Context) (int, error) {
	before := r.cfg.Now().Add(-r.cfg.Retention)
	total := 0
	for {
		n, err := r.store.PurgePublishedEvents(ctx, before, r.cfg.PurgeBatch)
		total += n
		if err != nil || n < r.cfg.PurgeBatch {
			return total, err
		}
	}
}

// purge runs Purge now and every PurgeEvery until ctx ends.
func (r *Relay) purge(ctx context.Context) {
	for {
		n, err := r.Purge(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Logger.Warn("outbox purge failed; trying again later", "purged", n, "err", err, "in", r.cfg.PurgeEvery)
		case n > 0:
			r.cfg.Logger.Info("outbox purged", "events", n, "retention", r.cfg.Retention)
		}
		t := time.NewTimer(r.cfg.PurgeEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Run relays until ctx ends: a pass right after one that published, a short wait
// after one that found nothing, a growing wait after one that failed. Beside it,
// it purges what outlived the retention.
func (r *Relay) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); r.purge(ctx) }()
	defer func() { <-done }()
	var backoff time.Duration
	for {
		n, err := r.Once(ctx)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, r.cfg.FirstRetry), r.cfg.MaxRetry)
			wait = backoff
			r.cfg.Logger.Warn("outbox relay: a pass failed; retrying", "published", n, "err", err, "in", wait)
		case n == 0:
			backoff, wait = 0, r.cfg.Idle
		default:
			backoff = 0
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
