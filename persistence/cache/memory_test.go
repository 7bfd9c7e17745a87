package cache_test

import (
	"context"
	"strconv"
	"testing"

	"phoneshop/persistence/cache"
	"phoneshop/persistence/cache/cachetest"
)

func TestMemoryContract(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Cache { return cache.NewMemory(0) })
}

func TestMemoryEvictsTheLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(3)
	for i := range 3 {
		if err := m.Set(ctx, strconv.Itoa(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := m.Get(ctx, "0"); !ok { // 0 is now the most recently used
		t.Fatal("key 0 missing before the bound was reached")
	}
	if err := m.Set(ctx, "3", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"0": true, "1": false, "2": true, "3": true} {
		if _, ok, _ := m.Get(ctx, key); ok != want {
			t.Errorf("key %s present = %v, want %v", key, ok, want)
		}
	}
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want the bound 3", m.Len())
	}
}
