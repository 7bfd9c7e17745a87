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
	ctx := context.Background()
	threshold := func() int64 { return 5 }
	level := func(available int64) inventory.Level { return inventory.Level{Available: available, Received: 20} }

	cases := []struct {
		name          string
		before, after int64
		wantState     string
		wantChange    bool
	}{
		{"in_stock_to_low_stock_is_a_state_change", 6, 5, "low_stock", true},
		{"low_stock_to_out_of_stock_is_a_state_change", 1, 0, "out_of_stock", true},
		{"out_of_stock_to_in_stock_is_a_state_change", 0, 20, "in_stock", true},
		{"in_stock_staying_in_stock_is_not", 20, 19, "in_stock", false},
		{"low_stock_staying_low_is_not", 5, 1, "low_stock", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := cache.NewMemory(0)
			var changes atomic.Int64
			p := cache.NewStockPublisher(mem, threshold, func(context.Context) { changes.Add(1) }, nil)
			defer p.Close()
			p.Publish("P9-128-OBS", level(tc.before), level(tc.after))
			waitFor(t, 10*time.Second, "stock state never published", func() bool {
				b, ok, _ := mem.Get(ctx, cache.StockKey("P9-128-OBS"))
				return ok && string(b) == tc.wantState
			})
			p.Close() // waits for the update in progress, hook included
			want := int64(0)
			if tc.wantChange {
				want = 1
			}
			if got := changes.Load(); got != want {
				t.Fatalf("onStateChange called %d times, want %d", got, want)
			}
		})
	}

	t.Run("publish_never_blocks_when_the_cache_is_stuck", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := cache.NewMetrics(reg)
		p := cache.NewStockPublisher(stuckCache{}, threshold, nil, nil, cache.WithPublisherMetrics(m))
		extra := 100
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range cache.StockQueueSize + extra {
				p.Publish("P9-128-OBS", level(int64(i)), level(int64(i+1)))
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Publish blocked behind a stuck cache")
		}
		// At most one update is being written; the queue holds the rest.
		if dropped := testutil.ToFloat64(counterNamed(t, reg, "phoneshop_cache_publish_dropped_total")); dropped < float64(extra-1) {
			t.Fatalf("dropped = %v, want at least %d", dropped, extra-1)
		}
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close blocked behind a stuck cache")
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
