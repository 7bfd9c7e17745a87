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

// stockChangeTimeout bounds one update's state-change hook.
const stockChangeTimeout = 2 * time.Second

// StockPublisher watches each SKU's stock state ("in_stock", "low_stock",
// "out_of_stock") as inventory grains change levels, and reports when a SKU's
// state changed (the shop invalidates the catalog then, on every edge).
//
// It used to write every level's state to the cache as "stock:<sku>" for hot
// reads, but nothing ever read those keys, and no read would be cheaper for them:
// a phone's details and a catalog page are served whole from a view held in
// process (Views), which a state change replaces through the catalog's
// generation, while reading the keys would cost a round trip per variant per
// request. So it no longer writes them, which also takes a cache write off every
// reservation and sale.
//
// Publish never blocks the grain: updates wait in a bounded queue and are dropped,
// and counted, when it is full. A dropped update only delays a state change until
// the SKU's next one, and the catalog TTL bounds how stale a page gets.
type StockPublisher struct {
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

// NewStockPublisher starts a publisher. lowStockThreshold is read for every
// update, so a configuration change applies at once; onStateChange (may be nil)
// is called when a SKU's state differs before and after an update. Close stops it.
func NewStockPublisher(lowStockThreshold func() int64, onStateChange func(ctx context.Context), log *slog.Logger, opts ...PublisherOption) *StockPublisher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &StockPublisher{
		threshold: lowStockThreshold, onStateChange: onStateChange, log: log,
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
			cancel() // unblocks a hook stuck on a dead server
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
	threshold := p.threshold()
	before, after := catalog.StateOf(u.before.Available, threshold), catalog.StateOf(u.after.Available, threshold)
	if before == after || p.onStateChange == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, stockChangeTimeout)
	defer cancel()
	p.log.Debug("stock state changed", "sku", u.sku, "from", before, "to", after)
	p.onStateChange(ctx)
}
