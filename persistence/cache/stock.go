package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"phoneshop/actors/inventory"
	"phoneshop/catalog"
)

// StockQueueSize is how many stock updates wait for the publisher before new ones
// are dropped.
const StockQueueSize = 1024

// stockWriteTimeout bounds one update's cache write and state-change hook.
const stockWriteTimeout = 2 * time.Second

// StockStateTTL bounds how long a published state lives without a new update, so
// that a dropped update cannot leave a wrong state behind for good; a missing key
// means "ask the catalog".
const StockStateTTL = 5 * time.Minute

// StockKey is the cache key of a SKU's stock state.
func StockKey(sku string) string { return "stock:" + sku }

// StockPublisher records each SKU's stock state ("in_stock", "low_stock",
// "out_of_stock") in the cache for hot reads, as inventory grains change levels,
// and reports when a SKU's state changed (the shop invalidates the catalog then).
// Publish never blocks the grain: updates wait in a bounded queue and are dropped,
// and counted, when it is full. A dropped update only delays the published state
// until the SKU's next change, and the catalog TTL bounds how stale a page gets.
type StockPublisher struct {
	cache         Cache
	threshold     func() int64
	onStateChange func(ctx context.Context)
	log           *slog.Logger
	metrics       *Metrics

	updates   chan stockUpdate
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type stockUpdate struct {
	sku           string
	before, after inventory.Level
}

// PublisherOption tunes a StockPublisher.
type PublisherOption func(*StockPublisher)

// WithPublisherMetrics counts dropped updates on m.
func WithPublisherMetrics(m *Metrics) PublisherOption {
	return func(p *StockPublisher) { p.metrics = m }
}

// NewStockPublisher starts a publisher writing to c. lowStockThreshold is read for
// every update, so a configuration change applies at once; onStateChange (may be
// nil) is called when a SKU's state differs before and after an update. Close stops it.
func NewStockPublisher(c Cache, lowStockThreshold func() int64, onStateChange func(ctx context.Context), log *slog.Logger, opts ...PublisherOption) *StockPublisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &StockPublisher{
		cache: c, threshold: lowStockThreshold, onStateChange: onStateChange, log: log,
		updates: make(chan stockUpdate, StockQueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	go p.run()
	return p
}

// Publish queues a SKU's level change; it never blocks.
func (p *StockPublisher) Publish(sku string, before, after inventory.Level) {
	select {
	case <-p.stop:
		return
	default:
	}
	select {
	case p.updates <- stockUpdate{sku: sku, before: before, after: after}:
	default:
		p.metrics.dropped()
	}
}

// Close stops the publisher after the update in progress; queued ones are dropped.
func (p *StockPublisher) Close() {
	p.closeOnce.Do(func() { close(p.stop) })
	<-p.done
}

func (p *StockPublisher) run() {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel() // unblocks a cache write stuck on a dead server
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-p.stop:
			return
		case u := <-p.updates:
			p.apply(ctx, u)
		}
	}
}

func (p *StockPublisher) apply(ctx context.Context, u stockUpdate) {
	ctx, cancel := context.WithTimeout(ctx, stockWriteTimeout)
	defer cancel()
	threshold := p.threshold()
	before, after := catalog.StateOf(u.before.Available, threshold), catalog.StateOf(u.after.Available, threshold)
	if err := p.cache.Set(ctx, StockKey(u.sku), []byte(after), StockStateTTL); err != nil && ctx.Err() == nil {
		p.log.Debug("stock state not cached", "sku", u.sku, "err", err)
	}
	if before != after && p.onStateChange != nil {
		p.onStateChange(ctx)
	}
}
