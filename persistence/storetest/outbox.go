package storetest

import (
	"context"
	"errors"
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
