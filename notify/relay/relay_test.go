package relay_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"phoneshop/actors/order"
	"phoneshop/notify/outbox"
	"phoneshop/notify/relay"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
)

// recorder is a broker stand-in for the relay's own tests: it records what it is
// given and confirms what its script lets through. (The broker adapters have their
// own tests against real servers.)
type recorder struct {
	mu        sync.Mutex
	published map[string]int
	// refuse, when set, says whether an event is not confirmed (returned).
	refuse func(outbox.Event) bool
	// fail makes the next n calls fail as a lost connection would.
	fail int
}

func newRecorder() *recorder { return &recorder{published: map[string]int{}} }

func (r *recorder) Publish(ctx context.Context, events []outbox.Event) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return nil, errors.New("connection lost")
	}
	var confirmed []string
	var err error
	for _, e := range events {
		r.published[e.ID]++
		if r.refuse != nil && r.refuse(e) {
			err = fmt.Errorf("event %s returned: no queue bound", e.ID)
			continue
		}
		confirmed = append(confirmed, e.ID)
	}
	return confirmed, err
}

func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.published)
}

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// confirmOrders writes n confirmed orders, each with its event, and returns the ids.
func confirmOrders(t *testing.T, s *sqlstore.Store, n int) []string {
	t.Helper()
	now := time.Now()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("ord_%03d", i)
		e, err := outbox.New(outbox.OrderConfirmed, id, map[string]string{"order_id": id}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOrder(context.Background(), 0, []byte("x"), order.Row{ID: id, AccountID: "acc", Status: order.StatusConfirmed,
			CreatedAt: now, UpdatedAt: now}, []outbox.Event{e}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func TestOncePublishesAndMarksWhatTheBrokerConfirmed(t *testing.T) {
	s := openStore(t)
	ids := confirmOrders(t, s, 5)
	pub := newRecorder()
	pub.refuse = func(e outbox.Event) bool { return e.ID == ids[2] }
	r := relay.New(s, pub, relay.Config{Lease: time.Hour})
	n, err := r.Once(context.Background())
	if n != 4 || err == nil {
		t.Fatalf("Once = %d, %v; want 4 published and the returned event's error", n, err)
	}
	left, err := s.UnpublishedEvents(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != ids[2] {
		t.Fatalf("unpublished after the pass = %+v, want only the returned event", left)
	}
	// Leased: not claimed again before its lease runs out.
	if n, err := r.Once(context.Background()); n != 0 || err != nil {
		t.Fatalf("second pass = %d, %v; want nothing (the event is leased)", n, err)
	}
	// After the lease, once the broker takes it, it is published.
	pub.refuse = nil
	later := relay.New(s, pub, relay.Config{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if n, err := later.Once(context.Background()); n != 1 || err != nil {
		t.Fatalf("pass after the lease = %d, %v; want the event", n, err)
	}
	if got := pub.counts()[ids[2]]; got != 2 {
		t.Errorf("the returned event was offered %d times, want 2", got)
	}
}

func TestRelaysSideBySidePublishEachEventOnce(t *testing.T) {
	s := openStore(t)
	ids := confirmOrders(t, s, 300)
	pub := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		r := relay.New(s, pub, relay.Config{Batch: 16, Idle: 5 * time.Millisecond})
		wg.Go(func() { r.Run(ctx) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := s.UnpublishedEvents(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relays did not publish every event within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	got := pub.counts()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s published %d times", id, got[id])
		}
	}
}

func TestRunBacksOffWhileTheBrokerIsDownAndLosesNothing(t *testing.T) {
	s := openStore(t)
	ids := confirmOrders(t, s, 20)
	pub := newRecorder()
	pub.fail = 3
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := relay.New(s, pub, relay.Config{Batch: 7, Lease: 50 * time.Millisecond, FirstRetry: 10 * time.Millisecond, Idle: 5 * time.Millisecond})
	go func() { defer close(done); r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := s.UnpublishedEvents(context.Background(), 1)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events left unpublished after the broker came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	got := pub.counts()
	var missing []string
	for _, id := range ids {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("never published: %v", missing)
	}
}

// outboxRows counts every row of the store's outbox at path, published or not,
// through a connection of its own.
func outboxRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPublishedEventsArePurgedAfterTheRetentionInBatches: the relay deletes what
// it published longer ago than the retention, a batch at a time, and keeps the
// rest and everything not yet published; Run does it on its own.
func TestPublishedEventsArePurgedAfterTheRetentionInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	ids := confirmOrders(t, s, 23)
	pub := newRecorder()
	pub.refuse = func(e outbox.Event) bool { return e.ID == ids[0] } // stays unpublished
	clock := time.Now()
	r := relay.New(s, pub, relay.Config{Batch: 100, Lease: time.Millisecond, Retention: 7 * 24 * time.Hour, PurgeBatch: 5,
		Now: func() time.Time { return clock }})
	if n, _ := r.Once(ctx); n != 22 {
		t.Fatalf("published %d, want 22", n)
	}
	if n, err := r.Purge(ctx); err != nil || n != 0 || outboxRows(t, path) != 23 {
		t.Fatalf("a purge within the retention = %d, %v; want nothing", n, err)
	}
	clock = clock.Add(7*24*time.Hour + time.Second)
	if n, err := r.Purge(ctx); err != nil || n != 22 {
		t.Fatalf("a purge after the retention = %d, %v; want the 22 published (5 at a time)", n, err)
	}
	left, err := s.UnpublishedEvents(ctx, 100)
	if err != nil || len(left) != 1 || left[0].ID != ids[0] || outboxRows(t, path) != 1 {
		t.Fatalf("left = %+v, %v; want the unpublished event only", left, err)
	}

	// Run publishes these, and purges every PurgeEvery: once its clock moves
	// past the retention, they go.
	for i := range 29 {
		id := fmt.Sprintf("ord_late_%02d", i)
		e, err := outbox.New(outbox.OrderConfirmed, id, map[string]string{"order_id": id}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveOrder(ctx, 0, []byte("x"), order.Row{ID: id, AccountID: "acc", Status: order.StatusConfirmed,
			CreatedAt: time.Now(), UpdatedAt: time.Now()}, []outbox.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	pub.refuse = nil
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var offset atomic.Int64
	running := relay.New(s, pub, relay.Config{Idle: 5 * time.Millisecond, Retention: time.Hour, PurgeBatch: 7,
		PurgeEvery: 10 * time.Millisecond, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	go func() { defer close(done); running.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := s.UnpublishedEvents(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("events unpublished after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := outboxRows(t, path); n != 30 {
		t.Fatalf("%d outbox rows within the retention, want the 30 published", n)
	}
	offset.Store(int64(time.Hour + time.Minute))
	for outboxRows(t, path) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows left after 10 s", outboxRows(t, path))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := pub.counts(); len(got) != 23+29 {
		t.Errorf("%d events published, want every one of the 52 written", len(got))
	}
}
