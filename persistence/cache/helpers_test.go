package cache_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/persistence/cache"
)

// countingCache is a Memory that counts misses of keys ending in a suffix.
type countingCache struct {
	*cache.Memory
	suffix string
	misses atomic.Int64
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, ok, err := c.Memory.Get(ctx, key)
	if !ok && strings.HasSuffix(key, c.suffix) {
		c.misses.Add(1)
	}
	return b, ok, err
}

// requests returns phoneshop_cache_requests_total for one cache and result.
func requests(t *testing.T, reg *prometheus.Registry, cacheName, result string) float64 {
	t.Helper()
	return counter(t, reg, "phoneshop_cache_requests_total", cacheName, result)
}

// localRequests returns phoneshop_cache_local_requests_total for one layer and result.
func localRequests(t *testing.T, reg *prometheus.Registry, layer, result string) float64 {
	t.Helper()
	return counter(t, reg, "phoneshop_cache_local_requests_total", layer, result)
}

func counter(t *testing.T, reg *prometheus.Registry, name, cacheName, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cache"] == cacheName && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{cache=%q,result=%q}", name, cacheName, result)
	return 0
}

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
