package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/notify/outbox"
)

// Outbox: an event is written with the snapshot that made it true, or not at all.
// A fenced-off write inserts nothing, the same fact written twice is one row, and
// of two activations racing to confirm one order exactly one event is written.
func Outbox(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	row := func(id string, st order.Status) order.Row {
		return order.Row{ID: id, AccountID: "acc_1", Status: st, TotalCents: 100, CreatedAt: now, UpdatedAt: now}
	}
	event := func(t *testing.T, key, id string) outbox.Event {
		t.Helper()
		e, err := outbox.New(key, id, map[string]string{"order_id": id}, now)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	t.Run("only_committed_writes_publish_and_a_fact_once", func(t *testing.T) {
		s := open(t)
		if err := s.SaveOrder(ctx, 0, []byte("committing"), row("ord_1", order.StatusCommitting), nil); err != nil {
			t.Fatal(err)
		}
		confirmed := event(t, outbox.OrderConfirmed, "ord_1")
		if err := s.SaveOrder(ctx, 1, []byte("confirmed"), row("ord_1", order.StatusConfirmed), []outbox.Event{confirmed}); err != nil {
			t.Fatal(err)
		}
		// A stale activation's confirm: fenced off, its event is not written.
		stale := event(t, outbox.OrderShipped, "ord_1")
		if err := s.SaveOrder(ctx, 1, []byte("stale"), row("ord_1", order.StatusShipped), []outbox.Event{stale}); !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("stale write: err = %v, want ErrStale", err)
		}
		// The same fact written again (another order's write carrying it): one row.
		if err := s.SaveOrder(ctx, 0, []byte("other"), row("ord_2", order.StatusConfirmed), []outbox.Event{confirmed}); err != nil {
			t.Fatal(err)
		}
		got, err := s.UnpublishedEvents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]outbox.Event{confirmed}, got); diff != "" {
			t.Fatalf("outbox (-want +got):\n%s", diff)
		}
	})

	t.Run("two_activations_racing_write_one_event", func(t *testing.T) {
		s := open(t)
		if err := s.SaveOrder(ctx, 0, []byte("committing"), row("ord_r", order.StatusCommitting), nil); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]error, 8)
		for i := range results {
			key := outbox.OrderConfirmed
			if i%2 == 1 {
				key = outbox.OrderCancelled // a different fact from a different activation
			}
			wg.Go(func() {
				results[i] = s.SaveOrder(ctx, 1, []byte("next"), row("ord_r", order.StatusConfirmed), []outbox.Event{event(t, key, "ord_r")})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, snapshot.ErrStale):
				t.Fatalf("racing write: %v", err)
			}
		}
		got, err := s.UnpublishedEvents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if won != 1 || len(got) != 1 {
			t.Fatalf("%d writes won and %d events were written, want 1 and 1: %+v", won, len(got), got)
		}
	})
}

// OutboxClaims: relays lease events oldest first; of relays racing, each event goes
// to one; a lease that runs out lets another relay claim the event; a published
// event is never claimed again.
func OutboxClaims(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var all []string
	for i := range 40 {
		id := fmt.Sprintf("ord_%02d", i)
		e, err := outbox.New(outbox.OrderConfirmed, id, nil, now.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOrder(ctx, 0, []byte("x"), order.Row{ID: id, AccountID: "acc", Status: order.StatusConfirmed,
			CreatedAt: now, UpdatedAt: now}, []outbox.Event{e}); err != nil {
			t.Fatal(err)
		}
		all = append(all, e.ID)
	}
	// Four relays race: every event is claimed by exactly one.
	var mu sync.Mutex
	claimedBy := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.ClaimEvents(ctx, now.Add(time.Second), time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					claimedBy[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimedBy) != len(all) {
		t.Fatalf("%d of %d events claimed", len(claimedBy), len(all))
	}
	for id, n := range claimedBy {
		if n != 1 {
			t.Errorf("event %s claimed %d times within its lease", id, n)
		}
	}
	// Ten are published; after the lease runs out, the other thirty are claimed
	// again, oldest first.
	if err := s.MarkPublished(ctx, all[:10], now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	again, err := s.ClaimEvents(ctx, now.Add(2*time.Minute), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range again {
		ids = append(ids, e.ID)
	}
	if diff := cmp.Diff(all[10:], ids); diff != "" {
		t.Fatalf("claimed after the lease ran out (-want +got):\n%s", diff)
	}
	left, err := s.UnpublishedEvents(ctx, 100)
	if err != nil || len(left) != 30 {
		t.Fatalf("unpublished = %d, %v; want 30", len(left), err)
	}
}

// OutboxGrowth: the backlog counts the events not yet published and dates the
// oldest; a purge deletes, a batch at a time, exactly the events published before
// its time, never one still waiting.
func OutboxGrowth(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	if pending, oldest, err := s.OutboxBacklog(ctx); err != nil || pending != 0 || !oldest.IsZero() {
		t.Fatalf("backlog of an empty outbox = %d, %v, %v", pending, oldest, err)
	}
	var ids []string
	for i := range 25 {
		id := fmt.Sprintf("ord_%02d", i)
		e, err := outbox.New(outbox.OrderConfirmed, id, nil, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOrder(ctx, 0, []byte("x"), order.Row{ID: id, AccountID: "acc", Status: order.StatusConfirmed,
			CreatedAt: now, UpdatedAt: now}, []outbox.Event{e}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	// 0-9 published a week ago, 10-19 an hour ago, 20-24 not yet.
	if err := s.MarkPublished(ctx, ids[:10], now.Add(-7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPublished(ctx, ids[10:20], now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	pending, oldest, err := s.OutboxBacklog(ctx)
	if err != nil || pending != 5 || !oldest.Equal(now.Add(20*time.Second)) {
		t.Fatalf("backlog = %d, oldest %v, %v; want 5, the 21st event's time", pending, oldest, err)
	}
	before := now.Add(-24 * time.Hour)
	var batches []int
	for {
		n, err := s.PurgePublishedEvents(ctx, before, 4)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n < 4 {
			break
		}
	}
	if diff := cmp.Diff([]int{4, 4, 2}, batches); diff != "" {
		t.Errorf("purged per batch of 4 (-want +got):\n%s", diff)
	}
	// Everything published and older than the hour, but never a pending event.
	if n, err := s.PurgePublishedEvents(ctx, now.Add(time.Hour), 100); err != nil || n != 10 {
		t.Fatalf("second purge = %d, %v; want the 10 published an hour ago", n, err)
	}
	left, err := s.UnpublishedEvents(ctx, 100)
	if err != nil || len(left) != 5 {
		t.Fatalf("unpublished after the purges = %d, %v; want 5", len(left), err)
	}
	if pending, _, err := s.OutboxBacklog(ctx); err != nil || pending != 5 {
		t.Fatalf("backlog after the purges = %d, %v", pending, err)
	}
}
