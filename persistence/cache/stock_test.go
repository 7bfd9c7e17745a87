package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"phoneshop/actors/inventory"
	"phoneshop/persistence/cache"
)

func TestStockPublisher(t *testing.T) {
	threshold := func() int64 { return 5 }
	level := func(available int64) inventory.Level { return inventory.Level{Available: available, Received: 20} }

	cases := []struct {
		name          string
		before, after int64
		wantChange    bool
	}{
		{"in_stock_to_low_stock_is_a_state_change", 6, 5, true},
		{"low_stock_to_out_of_stock_is_a_state_change", 1, 0, true},
		{"out_of_stock_to_in_stock_is_a_state_change", 0, 20, true},
		{"in_stock_staying_in_stock_is_not", 20, 19, false},
		{"low_stock_staying_low_is_not", 5, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var changes atomic.Int64
			p := cache.NewStockPublisher(threshold, func(context.Context) { changes.Add(1) }, nil)
			defer p.Close()
			p.Publish("P9-128-OBS", level(tc.before), level(tc.after))
			// Updates are applied in order: once this state change is reported,
			// the update above has been applied too.
			p.Publish("S24-256-BLK", level(0), level(20))
			want := int64(1)
			if tc.wantChange {
				want = 2
			}
			waitFor(t, 10*time.Second, "the sentinel state change was never reported", func() bool { return changes.Load() >= want })
			p.Close() // waits for the update in progress, hook included
			if got := changes.Load(); got != want {
				t.Fatalf("onStateChange called %d times, want %d (the sentinel's included)", got, want)
			}
		})
	}

	t.Run("publish_never_blocks_when_the_hook_is_stuck", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := cache.NewMetrics(reg)
		// The hook invalidates the catalog; a hung cache server holds it until
		// its context ends.
		stuck := func(ctx context.Context) { <-ctx.Done() }
		p := cache.NewStockPublisher(threshold, stuck, nil, cache.WithPublisherMetrics(m))
		extra := 100
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range cache.StockQueueSize + extra {
				p.Publish("P9-128-OBS", level(0), level(20)) // every one a state change
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Publish blocked behind a stuck hook")
		}
		// At most one update is being applied; the queue holds the rest.
		if dropped := testutil.ToFloat64(counterNamed(t, reg, "phoneshop_cache_publish_dropped_total")); dropped < float64(extra-1) {
			t.Fatalf("dropped = %v, want at least %d", dropped, extra-1)
		}
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close blocked behind a stuck hook")
		}
		p.Publish("P9-128-OBS", level(1), level(2)) // after Close: ignored, not blocked
	})
}

// counterNamed finds a registered collector by metric name, for testutil.ToFloat64.
func counterNamed(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"},
				func() float64 { return f.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
