package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"phoneshop/catalog"
	"phoneshop/persistence/cache"
)

func TestCatalogReadThrough(t *testing.T) {
	ctx := context.Background()
	reads := []struct {
		name  string
		read  func(s catalog.Store) (any, error)
		calls func(f *fakeCatalog) int64
	}{
		{"phone", func(s catalog.Store) (any, error) { return s.Phone(ctx, "pixel-9") },
			func(f *fakeCatalog) int64 { return f.phones.Load() }},
		{"search", func(s catalog.Store) (any, error) {
			return s.SearchPhones(ctx, catalog.Query{Words: []string{"pixel"}, Sort: catalog.SortName, PageSize: 20})
		}, func(f *fakeCatalog) int64 { return f.searches.Load() }},
		{"brands", func(s catalog.Store) (any, error) { return s.Brands(ctx) },
			func(f *fakeCatalog) int64 { return f.brands.Load() }},
	}
	for _, r := range reads {
		t.Run(r.name+"_second_read_is_served_from_the_cache", func(t *testing.T) {
			inner := newFakeCatalog()
			reg := prometheus.NewRegistry()
			c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{Metrics: cache.NewMetrics(reg)})
			want, err := r.read(inner)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				got, err := r.read(c)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("cached read differs from the store (-store +cached):\n%s", diff)
				}
			}
			if n := r.calls(inner); n != 2 { // one above, one through the cache
				t.Fatalf("store called %d times, want 2", n)
			}
			if hits, misses := requests(t, reg, "catalog", "hit"), requests(t, reg, "catalog", "miss"); hits != 2 || misses != 1 {
				t.Fatalf("hits, misses = %v, %v; want 2, 1", hits, misses)
			}
		})
		t.Run(r.name+"_falls_back_to_the_store_when_the_cache_fails", func(t *testing.T) {
			inner := newFakeCatalog()
			reg := prometheus.NewRegistry()
			c := cache.NewCatalog(inner, failingCache{}, cache.CatalogOptions{Metrics: cache.NewMetrics(reg)})
			want, _ := r.read(inner)
			for range 3 {
				got, err := r.read(c)
				if err != nil {
					t.Fatalf("read failed because of the cache: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("read differs from the store (-store +got):\n%s", diff)
				}
			}
			if n := r.calls(inner); n != 4 {
				t.Fatalf("store called %d times, want 4 (every read)", n)
			}
			if errs := requests(t, reg, "catalog", "error"); errs != 3 {
				t.Fatalf("error results = %v, want 3", errs)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()

	t.Run("cached_phone_keeps_every_field", func(t *testing.T) {
		// catalog.Variant hides PhoneID, PhoneName and Available from JSON; a
		// cached phone must still have them.
		c := cache.NewCatalog(newFakeCatalog(), cache.NewMemory(0), cache.CatalogOptions{})
		for range 2 {
			got, err := c.Phone(ctx, "pixel-9")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(pixel(), got); diff != "" {
				t.Fatalf("phone (-want +got):\n%s", diff)
			}
		}
	})

	t.Run("invalidate_sends_the_next_read_to_the_store", func(t *testing.T) {
		inner := newFakeCatalog()
		c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{})
		if _, err := c.Phone(ctx, "pixel-9"); err != nil {
			t.Fatal(err)
		}
		changed := pixel()
		changed.Variants[1].Available = 5
		inner.setPhone(changed)
		if err := c.Invalidate(ctx); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
		got, err := c.Phone(ctx, "pixel-9")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(changed, got); diff != "" {
			t.Fatalf("phone after Invalidate (-want +got):\n%s", diff)
		}
		if n := inner.phones.Load(); n != 2 {
			t.Fatalf("store called %d times, want 2", n)
		}
	})

	t.Run("invalidate_on_an_empty_cache_still_invalidates_later", func(t *testing.T) {
		inner := newFakeCatalog()
		c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{})
		for range 2 {
			if err := c.Invalidate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Phone(ctx, "pixel-9"); err != nil {
				t.Fatal(err)
			}
		}
		if n := inner.phones.Load(); n != 2 {
			t.Fatalf("store called %d times, want 2", n)
		}
	})

	t.Run("searches_are_keyed_by_filters_page_size_and_cursor", func(t *testing.T) {
		inner := newFakeCatalog()
		c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{})
		base := catalog.Query{Sort: catalog.SortName, PageSize: 20}
		byBrand := base
		byBrand.Brand = "Google"
		smaller := base
		smaller.PageSize = 5
		nextPage := base
		nextPage.After = &catalog.Cursor{Sort: catalog.SortName, Str: "Google Pixel 9", ID: "pixel-9", Filter: base.Fingerprint()}
		queries := []catalog.Query{base, byBrand, smaller, nextPage}
		for range 2 {
			for _, q := range queries {
				got, err := c.SearchPhones(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := newFakeCatalog().SearchPhones(ctx, q)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("search %+v (-want +got):\n%s", q, diff)
				}
			}
		}
		if n := inner.searches.Load(); n != int64(len(queries)) {
			t.Fatalf("store searched %d times, want %d (once per distinct query)", n, len(queries))
		}
	})

	t.Run("unknown_phone_is_not_cached", func(t *testing.T) {
		inner := newFakeCatalog()
		c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{})
		for range 2 {
			if _, err := c.Phone(ctx, "nokia-3310"); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("err = %v, want catalog.ErrNotFound", err)
			}
		}
		if n := inner.phones.Load(); n != 2 {
			t.Fatalf("store called %d times, want 2", n)
		}
	})

	t.Run("variants_by_sku_are_never_cached", func(t *testing.T) {
		inner := newFakeCatalog()
		c := cache.NewCatalog(inner, cache.NewMemory(0), cache.CatalogOptions{})
		for range 2 {
			got, err := c.VariantsBySKU(ctx, []string{"P9-128-OBS"})
			if err != nil || got["P9-128-OBS"].PriceCents != 79900 {
				t.Fatalf("VariantsBySKU = %v, %v", got, err)
			}
		}
		if n := inner.variants.Load(); n != 2 {
			t.Fatalf("store called %d times, want 2", n)
		}
	})

	t.Run("fifty_concurrent_misses_make_one_store_call", func(t *testing.T) {
		inner := newFakeCatalog()
		inner.phoneGate = make(chan struct{})
		mem := &countingCache{Memory: cache.NewMemory(0), suffix: ":phone:pixel-9"}
		c := cache.NewCatalog(inner, mem, cache.CatalogOptions{})
		const readers = 50
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range readers {
			wg.Go(func() {
				p, err := c.Phone(ctx, "pixel-9")
				if err != nil || !cmp.Equal(p, pixel()) {
					failed.Add(1)
				}
			})
		}
		// Nothing is cached until the store answers, so every reader misses first.
		waitFor(t, 10*time.Second, "50 readers did not all miss", func() bool { return mem.misses.Load() >= readers })
		close(inner.phoneGate)
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Fatalf("%d readers got an error or a wrong phone", n)
		}
		if n := inner.phones.Load(); n != 1 {
			t.Fatalf("store called %d times, want 1", n)
		}
	})

	t.Run("a_waiter_whose_leader_gave_up_reads_the_store_itself", func(t *testing.T) {
		inner := newFakeCatalog()
		inner.phoneGate = make(chan struct{})
		c := cache.NewCatalog(&cancelOnGate{fakeCatalog: inner}, cache.NewMemory(0), cache.CatalogOptions{})
		leaderCtx, cancelLeader := context.WithCancel(ctx)
		leaderDone := make(chan error, 1)
		go func() {
			_, err := c.Phone(leaderCtx, "pixel-9")
			leaderDone <- err
		}()
		waitFor(t, 10*time.Second, "leader never reached the store", func() bool { return inner.phones.Load() == 1 })
		waiterDone := make(chan error, 1)
		go func() {
			_, err := c.Phone(ctx, "pixel-9")
			waiterDone <- err
		}()
		cancelLeader()
		if err := <-leaderDone; !errors.Is(err, context.Canceled) {
			t.Fatalf("leader err = %v, want context.Canceled", err)
		}
		close(inner.phoneGate)
		if err := <-waiterDone; err != nil {
			t.Fatalf("waiter failed because another request gave up: %v", err)
		}
	})
}

// cancelOnGate makes Phone return the caller's context error while the gate holds,
// as a store call cut short by its request does.
type cancelOnGate struct{ *fakeCatalog }

func (c *cancelOnGate) Phone(ctx context.Context, id string) (catalog.Phone, error) {
	c.phones.Add(1)
	select {
	case <-ctx.Done():
		return catalog.Phone{}, ctx.Err()
	case <-c.phoneGate:
	}
	return pixel(), nil
}
