package inventory

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ttl = 10 * time.Minute
)

// step is one command on an item and everything it must leave behind. got is the
// command's result: the changed flag for mutations, the released count for Expire.
type step struct {
	do      func(it *Item) (got any, err error)
	want    any
	wantErr error
	level   Level
}

func receive(id string, qty int64) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Receive(id, qty) }
}

func reserveAt(order string, qty int64, now time.Time) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Reserve(order, qty, now, ttl) }
}

func reserve(order string, qty int64) func(*Item) (any, error) {
	return reserveAt(order, qty, t0)
}

func commit(order string) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Commit(order, t0) }
}

func release(order string) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Release(order) }
}

func ret(order string) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Return(order) }
}

func expire(now time.Time) func(*Item) (any, error) {
	return func(it *Item) (any, error) { return it.Expire(now), nil }
}

// lv builds a Level as available, reserved, sold, received.
func lv(available, reserved, sold, received int64) Level {
	return Level{Available: available, Reserved: reserved, Sold: sold, Received: received}
}

// runSteps applies steps in order and checks, after every one, its result, its
// error, the conservation invariant and the exact counters.
func runSteps(t *testing.T, it *Item, steps []step) {
	t.Helper()
	for i, s := range steps {
		got, err := s.do(it)
		if s.wantErr == nil && err != nil {
			t.Fatalf("step %d: unexpected error %v", i, err)
		}
		if s.wantErr != nil && !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: error = %v, want %v", i, err, s.wantErr)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Fatalf("step %d: result (-want +got):\n%s", i, diff)
		}
		if err := it.Check(); err != nil {
			t.Fatalf("step %d: Check() = %v", i, err)
		}
		if diff := cmp.Diff(s.level, it.Level()); diff != "" {
			t.Fatalf("step %d: level (-want +got):\n%s", i, diff)
		}
	}
}

func TestItemCommands(t *testing.T) {
	stocked := step{do: receive("rq-1", 10), want: true, level: lv(10, 0, 0, 10)}

	tests := []struct {
		name  string
		steps []step
	}{
		{"zero_item_is_empty_and_consistent", []step{
			{do: expire(t0), want: 0, level: lv(0, 0, 0, 0)},
		}},
		{"receive_adds_to_available_and_received", []step{
			stocked,
			{do: receive("rq-2", 5), want: true, level: lv(15, 0, 0, 15)},
		}},
		{"receive_repeated_request_id_changes_nothing", []step{
			stocked,
			{do: receive("rq-1", 10), want: false, level: lv(10, 0, 0, 10)},
		}},
		{"receive_repeated_request_id_with_other_quantity_fails_receipt_changed_and_changes_nothing", []step{
			stocked,
			{do: receive("rq-1", 99), want: false, wantErr: ErrReceiptChanged, level: lv(10, 0, 0, 10)},
			// the first quantity is still a plain retry
			{do: receive("rq-1", 10), want: false, level: lv(10, 0, 0, 10)},
		}},
		{"receive_zero_or_negative_qty_fails_and_changes_nothing", []step{
			stocked,
			{do: receive("rq-2", 0), want: false, wantErr: ErrInvalidQuantity, level: lv(10, 0, 0, 10)},
			{do: receive("rq-3", -4), want: false, wantErr: ErrInvalidQuantity, level: lv(10, 0, 0, 10)},
			// the refused ids were not remembered: they count when valid
			{do: receive("rq-2", 1), want: true, level: lv(11, 0, 0, 11)},
		}},
		{"reserve_moves_available_to_reserved", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: reserve("o2", 2), want: true, level: lv(5, 5, 0, 10)},
		}},
		{"reserve_of_all_available_succeeds", []step{
			stocked,
			{do: reserve("o1", 10), want: true, level: lv(0, 10, 0, 10)},
		}},
		{"reserve_fails_out_of_stock_and_changes_nothing", []step{
			stocked,
			{do: reserve("o1", 8), want: true, level: lv(2, 8, 0, 10)},
			{do: reserve("o2", 3), want: false, wantErr: ErrOutOfStock, level: lv(2, 8, 0, 10)},
			// o2 holds nothing, so commit finds no reservation
			{do: commit("o2"), want: false, wantErr: ErrReservationMissing, level: lv(2, 8, 0, 10)},
		}},
		{"reserve_on_item_never_received_fails_out_of_stock", []step{
			{do: reserve("o1", 1), want: false, wantErr: ErrOutOfStock, level: lv(0, 0, 0, 0)},
		}},
		{"reserve_zero_or_negative_qty_fails_and_changes_nothing", []step{
			stocked,
			{do: reserve("o1", 0), want: false, wantErr: ErrInvalidQuantity, level: lv(10, 0, 0, 10)},
			{do: reserve("o1", -2), want: false, wantErr: ErrInvalidQuantity, level: lv(10, 0, 0, 10)},
		}},
		{"reserve_repeat_same_qty_is_idempotent", []step{
			stocked,
			{do: reserve("o1", 4), want: true, level: lv(6, 4, 0, 10)},
			{do: reserve("o1", 4), want: false, level: lv(6, 4, 0, 10)},
			{do: reserve("o1", 4), want: false, level: lv(6, 4, 0, 10)},
		}},
		{"reserve_repeat_succeeds_even_when_stock_is_now_short", []step{
			stocked,
			{do: reserve("o1", 6), want: true, level: lv(4, 6, 0, 10)},
			{do: reserve("o1", 6), want: false, level: lv(4, 6, 0, 10)},
		}},
		{"reserve_different_qty_for_same_order_fails_quantity_changed", []step{
			stocked,
			{do: reserve("o1", 4), want: true, level: lv(6, 4, 0, 10)},
			{do: reserve("o1", 5), want: false, wantErr: ErrQuantityChanged, level: lv(6, 4, 0, 10)},
			{do: reserve("o1", 1), want: false, wantErr: ErrQuantityChanged, level: lv(6, 4, 0, 10)},
		}},
		{"reserve_after_commit_is_a_noop", []step{
			stocked,
			{do: reserve("o1", 4), want: true, level: lv(6, 4, 0, 10)},
			{do: commit("o1"), want: true, level: lv(6, 0, 4, 10)},
			{do: reserve("o1", 4), want: false, level: lv(6, 0, 4, 10)},
			{do: reserve("o1", 2), want: false, wantErr: ErrQuantityChanged, level: lv(6, 0, 4, 10)},
		}},
		{"commit_moves_reserved_to_sold", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: reserve("o2", 2), want: true, level: lv(5, 5, 0, 10)},
			{do: commit("o1"), want: true, level: lv(5, 2, 3, 10)},
		}},
		{"commit_repeat_is_a_noop", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: commit("o1"), want: true, level: lv(7, 0, 3, 10)},
			{do: commit("o1"), want: false, level: lv(7, 0, 3, 10)},
		}},
		{"commit_without_reservation_fails_reservation_missing", []step{
			stocked,
			{do: commit("o1"), want: false, wantErr: ErrReservationMissing, level: lv(10, 0, 0, 10)},
		}},
		{"commit_after_release_fails_reservation_missing", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: release("o1"), want: true, level: lv(10, 0, 0, 10)},
			{do: commit("o1"), want: false, wantErr: ErrReservationMissing, level: lv(10, 0, 0, 10)},
		}},
		{"release_returns_reserved_to_available", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: reserve("o2", 2), want: true, level: lv(5, 5, 0, 10)},
			{do: release("o1"), want: true, level: lv(8, 2, 0, 10)},
			{do: release("o1"), want: false, level: lv(8, 2, 0, 10)},
		}},
		{"release_unknown_order_is_a_noop", []step{
			stocked,
			{do: release("nobody"), want: false, level: lv(10, 0, 0, 10)},
		}},
		{"release_after_commit_is_a_noop", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: commit("o1"), want: true, level: lv(7, 0, 3, 10)},
			{do: release("o1"), want: false, level: lv(7, 0, 3, 10)},
		}},
		{"return_after_commit_puts_units_back_and_twice_is_a_noop", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: commit("o1"), want: true, level: lv(7, 0, 3, 10)},
			{do: ret("o1"), want: true, level: lv(10, 0, 0, 10)},
			{do: ret("o1"), want: false, level: lv(10, 0, 0, 10)},
		}},
		{"return_without_sale_is_a_noop_and_keeps_reservation", []step{
			stocked,
			{do: ret("o1"), want: false, level: lv(10, 0, 0, 10)},
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: ret("o1"), want: false, level: lv(7, 3, 0, 10)},
		}},
		{"expire_before_deadline_keeps_reservation", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: expire(t0), want: 0, level: lv(7, 3, 0, 10)},
			{do: expire(t0.Add(ttl - time.Nanosecond)), want: 0, level: lv(7, 3, 0, 10)},
		}},
		{"expire_at_deadline_releases_reservation", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: expire(t0.Add(ttl)), want: 1, level: lv(10, 0, 0, 10)},
			{do: expire(t0.Add(ttl)), want: 0, level: lv(10, 0, 0, 10)},
			{do: commit("o1"), want: false, wantErr: ErrReservationMissing, level: lv(10, 0, 0, 10)},
		}},
		{"expire_releases_only_due_reservations", []step{
			stocked,
			{do: reserveAt("o1", 1, t0), want: true, level: lv(9, 1, 0, 10)},
			{do: reserveAt("o2", 2, t0.Add(time.Minute)), want: true, level: lv(7, 3, 0, 10)},
			{do: reserveAt("o3", 3, t0.Add(5*time.Minute)), want: true, level: lv(4, 6, 0, 10)},
			{do: expire(t0.Add(ttl + time.Minute)), want: 2, level: lv(7, 3, 0, 10)},
			{do: expire(t0.Add(ttl + 5*time.Minute)), want: 1, level: lv(10, 0, 0, 10)},
		}},
		{"expire_leaves_sales_alone", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: commit("o1"), want: true, level: lv(7, 0, 3, 10)},
			{do: expire(t0.Add(24 * time.Hour)), want: 0, level: lv(7, 0, 3, 10)},
		}},
		{"reserve_again_after_expiry_succeeds", []step{
			stocked,
			{do: reserve("o1", 3), want: true, level: lv(7, 3, 0, 10)},
			{do: expire(t0.Add(ttl)), want: 1, level: lv(10, 0, 0, 10)},
			{do: reserveAt("o1", 3, t0.Add(ttl)), want: true, level: lv(7, 3, 0, 10)},
			{do: commit("o1"), want: true, level: lv(7, 0, 3, 10)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, &Item{}, tc.steps)
		})
	}
}

// TestReceiptsInMemory: an item keeps every receipt until Compact, then the
// last receiptWindow and every one no write has taken yet; a receipt dropped from
// memory is one the item no longer knows (the grain looks it up in the store),
// and one recalled from the store is a retry again.
func TestReceiptsInMemory(t *testing.T) {
	it := &Item{}
	for i := range receiptWindow + 6 {
		mustDo(t, it, receive(fmt.Sprintf("rq-%d", i), 1))
	}
	if !it.KnowsReceipt("rq-0") {
		t.Fatal("a receipt no write has taken is not in memory")
	}
	// Compact keeps what no write has taken, however many.
	it.Compact(t0)
	if got := len(it.Snapshot().RecentReceipts); got != receiptWindow+6 {
		t.Fatalf("after Compact with nothing written: %d receipts in memory, want all %d", got, receiptWindow+6)
	}
	if got := it.TakeChange().Receipts; len(got) != receiptWindow+6 {
		t.Fatalf("the write carries %d receipts, want %d", len(got), receiptWindow+6)
	}
	it.Compact(t0)
	recent := it.Snapshot().RecentReceipts
	if len(recent) != receiptWindow || recent[0].RequestID != "rq-6" {
		t.Fatalf("after the write and Compact: %d receipts from %q, want the last %d from rq-6", len(recent), recent[0].RequestID, receiptWindow)
	}
	w := int64(receiptWindow + 6)
	runSteps(t, it, []step{
		// in memory: a retry
		{do: receive("rq-6", 1), want: false, level: lv(w, 0, 0, w)},
	})
	if it.KnowsReceipt("rq-0") {
		t.Fatal("rq-0 is still in memory after Compact")
	}
	it.RecallReceipt(Receipt{RequestID: "rq-0", Quantity: 1})
	runSteps(t, it, []step{
		{do: receive("rq-0", 1), want: false, level: lv(w, 0, 0, w)},
		{do: receive("rq-0", 2), want: false, wantErr: ErrReceiptChanged, level: lv(w, 0, 0, w)},
	})
	it.Compact(t0)
	if it.KnowsReceipt("rq-0") {
		t.Fatal("a recalled receipt is kept past Compact")
	}
}

func TestNextExpiry(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, it *Item)
		want   time.Time
		wantOK bool
	}{
		{
			name:  "none_when_nothing_is_reserved",
			setup: func(t *testing.T, it *Item) {},
		},
		{
			name: "earliest_of_several_reservations",
			setup: func(t *testing.T, it *Item) {
				mustDo(t, it, reserveAt("late", 1, t0.Add(3*time.Minute)))
				mustDo(t, it, reserveAt("early", 1, t0.Add(time.Minute)))
				mustDo(t, it, reserveAt("mid", 1, t0.Add(2*time.Minute)))
			},
			want: t0.Add(time.Minute + ttl), wantOK: true,
		},
		{
			name: "committed_reservation_no_longer_counts",
			setup: func(t *testing.T, it *Item) {
				mustDo(t, it, reserveAt("early", 1, t0))
				mustDo(t, it, reserveAt("late", 1, t0.Add(time.Minute)))
				mustDo(t, it, commit("early"))
			},
			want: t0.Add(time.Minute + ttl), wantOK: true,
		},
		{
			name: "none_after_everything_expired",
			setup: func(t *testing.T, it *Item) {
				mustDo(t, it, reserveAt("a", 1, t0))
				mustDo(t, it, reserveAt("b", 1, t0.Add(time.Minute)))
				if n := it.Expire(t0.Add(time.Hour)); n != 2 {
					t.Fatalf("Expire released %d, want 2", n)
				}
			},
		},
		{
			name: "none_after_release",
			setup: func(t *testing.T, it *Item) {
				mustDo(t, it, reserve("a", 1))
				mustDo(t, it, release("a"))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := &Item{}
			mustDo(t, it, receive("rq", 10))
			tc.setup(t, it)
			got, ok := it.NextExpiry()
			if ok != tc.wantOK || !got.Equal(tc.want) {
				t.Fatalf("NextExpiry() = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
			if err := it.Check(); err != nil {
				t.Fatalf("Check() = %v", err)
			}
		})
	}
}

// mustDo runs one command that must succeed and keep the invariant.
func mustDo(t *testing.T, it *Item, do func(*Item) (any, error)) {
	t.Helper()
	if _, err := do(it); err != nil {
		t.Fatalf("command failed: %v", err)
	}
	if err := it.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T) *Item
		want  Snapshot
	}{
		{
			name:  "zero_item",
			build: func(t *testing.T) *Item { return &Item{} },
			want:  Snapshot{Reservations: []Reservation{}, Sales: map[string]Sale{}},
		},
		{
			name: "item_with_receipts_reservations_and_sales",
			build: func(t *testing.T) *Item {
				it := &Item{}
				mustDo(t, it, receive("rq-1", 10))
				mustDo(t, it, receive("rq-2", 5))
				mustDo(t, it, reserveAt("o-b", 2, t0))
				mustDo(t, it, reserveAt("o-a", 3, t0.Add(time.Minute)))
				mustDo(t, it, reserve("o-c", 4))
				mustDo(t, it, commit("o-c"))
				mustDo(t, it, reserve("o-d", 1))
				mustDo(t, it, commit("o-d"))
				return it
			},
			want: Snapshot{
				Level: lv(5, 5, 5, 15),
				Reservations: []Reservation{
					{OrderID: "o-a", Quantity: 3, ExpiresAt: t0.Add(time.Minute + ttl)},
					{OrderID: "o-b", Quantity: 2, ExpiresAt: t0.Add(ttl)},
				},
				Sales:          map[string]Sale{"o-c": {4, t0}, "o-d": {1, t0}},
				RecentReceipts: []Receipt{{"rq-1", 10}, {"rq-2", 5}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := tc.build(t)
			s := it.Snapshot()
			if diff := cmp.Diff(tc.want, s); diff != "" {
				t.Fatalf("Snapshot() (-want +got):\n%s", diff)
			}
			back, err := FromSnapshot(s)
			if err != nil {
				t.Fatalf("FromSnapshot() = %v", err)
			}
			if diff := cmp.Diff(s, back.Snapshot()); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(it.Level(), back.Level()); diff != "" {
				t.Fatalf("level after round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromSnapshotKeepsIdempotency(t *testing.T) {
	it := &Item{}
	mustDo(t, it, receive("rq-1", 10))
	mustDo(t, it, reserve("held", 2))
	mustDo(t, it, reserve("sold", 3))
	mustDo(t, it, commit("sold"))

	back, err := FromSnapshot(it.Snapshot())
	if err != nil {
		t.Fatalf("FromSnapshot() = %v", err)
	}
	runSteps(t, back, []step{
		{do: receive("rq-1", 10), want: false, level: lv(5, 2, 3, 10)},
		{do: reserve("held", 2), want: false, level: lv(5, 2, 3, 10)},
		{do: reserve("sold", 3), want: false, level: lv(5, 2, 3, 10)},
		{do: commit("sold"), want: false, level: lv(5, 2, 3, 10)},
		{do: expire(t0.Add(ttl)), want: 1, level: lv(7, 0, 3, 10)},
		{do: ret("sold"), want: true, level: lv(10, 0, 0, 10)},
	})
}

// TestReceiptWithoutQuantityCountsAsRetry: a receipt remembered from a snapshot
// written before quantities were kept matches its id with any quantity, as before.
func TestReceiptWithoutQuantityCountsAsRetry(t *testing.T) {
	it, err := FromSnapshot(Snapshot{Level: lv(10, 0, 0, 10), RecentReceipts: []Receipt{{RequestID: "rq-old"}}})
	if err != nil {
		t.Fatalf("FromSnapshot() = %v", err)
	}
	runSteps(t, it, []step{
		{do: receive("rq-old", 7), want: false, level: lv(10, 0, 0, 10)},
		{do: receive("rq-new", 7), want: true, level: lv(17, 0, 0, 17)},
		{do: receive("rq-new", 8), want: false, wantErr: ErrReceiptChanged, level: lv(17, 0, 0, 17)},
	})
}

func TestSnapshotIsACopy(t *testing.T) {
	it := &Item{}
	mustDo(t, it, receive("rq-1", 10))
	mustDo(t, it, reserve("o1", 2))
	mustDo(t, it, reserve("o2", 3))
	mustDo(t, it, commit("o2"))
	want := it.Snapshot()

	s := it.Snapshot()
	s.Reservations[0].Quantity = 99
	s.Sales["o2"] = Sale{99, t0}
	s.RecentReceipts[0].RequestID = "changed"
	if diff := cmp.Diff(want, it.Snapshot()); diff != "" {
		t.Fatalf("mutating a snapshot changed the item (-want +got):\n%s", diff)
	}

	restored, err := FromSnapshot(want)
	if err != nil {
		t.Fatalf("FromSnapshot() = %v", err)
	}
	want.Sales["o2"] = Sale{99, t0}
	want.RecentReceipts[0].RequestID = "changed"
	if got := restored.Snapshot(); got.Sales["o2"].Quantity != 3 || got.RecentReceipts[0].RequestID != "rq-1" {
		t.Fatalf("mutating the source snapshot changed the restored item: %+v", got)
	}
}

func TestFromSnapshotRejectsCorruption(t *testing.T) {
	tests := []struct {
		name string
		snap Snapshot
	}{
		{
			name: "counters_not_summing_to_received",
			snap: Snapshot{Level: lv(5, 0, 0, 6)},
		},
		{
			name: "negative_counter",
			snap: Snapshot{Level: lv(-1, 1, 0, 0), Reservations: []Reservation{{OrderID: "o1", Quantity: 1, ExpiresAt: t0}}},
		},
		{
			name: "reserved_counter_disagrees_with_reservations",
			snap: Snapshot{Level: lv(7, 3, 0, 10), Reservations: []Reservation{{OrderID: "o1", Quantity: 2, ExpiresAt: t0}}},
		},
		{
			name: "sold_counter_disagrees_with_sales",
			snap: Snapshot{Level: lv(7, 0, 3, 10), Sales: map[string]Sale{"o1": {4, t0}}},
		},
		{
			name: "non_positive_quantities_that_still_sum_up",
			snap: Snapshot{Level: lv(7, 3, 0, 10), Reservations: []Reservation{
				{OrderID: "o1", Quantity: 5, ExpiresAt: t0},
				{OrderID: "o2", Quantity: -2, ExpiresAt: t0},
			}},
		},
		{
			name: "zero_sale",
			snap: Snapshot{Level: lv(10, 0, 0, 10), Sales: map[string]Sale{"o1": {0, t0}}},
		},
		{
			name: "duplicate_reservation_ids_lose_units",
			snap: Snapshot{Level: lv(6, 4, 0, 10), Reservations: []Reservation{
				{OrderID: "o1", Quantity: 2, ExpiresAt: t0},
				{OrderID: "o1", Quantity: 2, ExpiresAt: t0},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSnapshot(tc.snap)
			if !errors.Is(err, ErrConservation) {
				t.Fatalf("FromSnapshot() error = %v, want %v", err, ErrConservation)
			}
		})
	}
}

// model is an independent, simple statement of the item's rules, to compare the
// item against in the randomized test.
type model struct {
	received, available int64
	reserved            map[string]int64
	expires             map[string]time.Time
	sold                map[string]int64
	receipts            []Receipt
}

func (m *model) level() Level {
	var r, s int64
	for _, q := range m.reserved {
		r += q
	}
	for _, q := range m.sold {
		s += q
	}
	return Level{Available: m.available, Reserved: r, Sold: s, Received: m.received}
}

func (m *model) receive(id string, qty int64) (bool, error) {
	if qty <= 0 {
		return false, ErrInvalidQuantity
	}
	for _, r := range m.receipts {
		if r.RequestID == id {
			if r.Quantity != qty {
				return false, ErrReceiptChanged
			}
			return false, nil
		}
	}
	m.received += qty
	m.available += qty
	// The item keeps every receipt until Compact, which this model never runs.
	m.receipts = append(m.receipts, Receipt{RequestID: id, Quantity: qty})
	return true, nil
}

func (m *model) reserve(order string, qty int64, now time.Time) (bool, error) {
	if qty <= 0 {
		return false, ErrInvalidQuantity
	}
	held, sold := m.reserved[order], m.sold[order]
	switch {
	case sold > 0 && sold != qty, held > 0 && held != qty:
		return false, ErrQuantityChanged
	case sold > 0, held > 0:
		return false, nil
	case qty > m.available:
		return false, ErrOutOfStock
	}
	m.reserved[order], m.expires[order] = qty, now.Add(ttl)
	m.available -= qty
	return true, nil
}

func (m *model) sell(order string, qty int64) ([2]bool, error) {
	switch {
	case qty <= 0:
		return [2]bool{}, ErrInvalidQuantity
	case m.sold[order] > 0, m.reserved[order] > 0:
		return [2]bool{false, true}, nil
	case qty > m.available:
		return [2]bool{}, ErrOutOfStock
	}
	m.sold[order] = qty
	m.available -= qty
	return [2]bool{true, false}, nil
}

func (m *model) commit(order string) (bool, error) {
	if m.sold[order] > 0 {
		return false, nil
	}
	q := m.reserved[order]
	if q == 0 {
		return false, ErrReservationMissing
	}
	delete(m.reserved, order)
	delete(m.expires, order)
	m.sold[order] = q
	return true, nil
}

func (m *model) release(order string) bool {
	q := m.reserved[order]
	if q == 0 {
		return false
	}
	delete(m.reserved, order)
	delete(m.expires, order)
	m.available += q
	return true
}

func (m *model) ret(order string) bool {
	q := m.sold[order]
	if q == 0 {
		return false
	}
	delete(m.sold, order)
	m.available += q
	return true
}

func (m *model) expire(now time.Time) int {
	n := 0
	for order, at := range m.expires {
		if !now.Before(at) {
			m.release(order)
			n++
		}
	}
	return n
}

func (m *model) nextExpiry() (time.Time, bool) {
	var all []time.Time
	for _, at := range m.expires {
		all = append(all, at)
	}
	if len(all) == 0 {
		return time.Time{}, false
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	return all[0], true
}

func TestRandomCommandsKeepConservation(t *testing.T) {
	const commands = 2000
	rng := rand.New(rand.NewPCG(20250301, 42))
	it := &Item{}
	m := &model{reserved: map[string]int64{}, expires: map[string]time.Time{}, sold: map[string]int64{}}
	now := t0
	var issued []string // receipt ids, to replay some of them
	counts := map[string]int{}

	for i := range commands {
		order := fmt.Sprintf("o%d", rng.IntN(20))
		var desc string
		var got, want any
		var gotErr, wantErr error
		switch p := rng.IntN(100); {
		case p < 15:
			id := fmt.Sprintf("rq-%d", len(issued))
			if len(issued) > 0 && rng.IntN(3) == 0 {
				id = issued[max(0, len(issued)-1-rng.IntN(80))]
			} else {
				issued = append(issued, id)
			}
			qty := rng.Int64N(7) - 1
			desc = fmt.Sprintf("Receive(%s, %d)", id, qty)
			got, gotErr = it.Receive(id, qty)
			want, wantErr = m.receive(id, qty)
		case p < 40:
			qty := rng.Int64N(7) - 1
			desc = fmt.Sprintf("Sell(%s, %d)", order, qty)
			changed, before, err := it.Sell(order, qty, now, []byte(order))
			got, gotErr = [2]bool{changed, before}, err
			want, wantErr = m.sell(order, qty)
		case p < 50:
			qty := rng.Int64N(7) - 1
			desc = fmt.Sprintf("Reserve(%s, %d)", order, qty)
			got, gotErr = it.Reserve(order, qty, now, ttl)
			want, wantErr = m.reserve(order, qty, now)
		case p < 65:
			desc = fmt.Sprintf("Commit(%s)", order)
			got, gotErr = it.Commit(order, now)
			want, wantErr = m.commit(order)
		case p < 75:
			desc = fmt.Sprintf("Release(%s)", order)
			got, gotErr = it.Release(order)
			want = m.release(order)
		case p < 85:
			desc = fmt.Sprintf("Return(%s)", order)
			got, gotErr = it.Return(order)
			want = m.ret(order)
		default:
			now = now.Add(time.Duration(rng.IntN(240)) * time.Second)
			desc = fmt.Sprintf("Expire(%s)", now.Sub(t0))
			got = it.Expire(now)
			want = m.expire(now)
		}
		counts[desc[:3]]++

		if err := it.Check(); err != nil {
			t.Fatalf("command %d %s: Check() = %v", i, desc, err)
		}
		if wantErr == nil && gotErr != nil || wantErr != nil && !errors.Is(gotErr, wantErr) {
			t.Fatalf("command %d %s: error = %v, want %v", i, desc, gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("command %d %s: result (-want +got):\n%s", i, desc, diff)
		}
		if diff := cmp.Diff(m.level(), it.Level()); diff != "" {
			t.Fatalf("command %d %s: level (-want +got):\n%s", i, desc, diff)
		}
		gotNext, gotOK := it.NextExpiry()
		wantNext, wantOK := m.nextExpiry()
		if gotOK != wantOK || !gotNext.Equal(wantNext) {
			t.Fatalf("command %d %s: NextExpiry() = %v, %v; want %v, %v", i, desc, gotNext, gotOK, wantNext, wantOK)
		}
	}

	// every kind of command ran often enough for the test to mean something
	for _, kind := range []string{"Rec", "Res", "Sel", "Com", "Rel", "Ret", "Exp"} {
		if counts[kind] < commands/20 {
			t.Errorf("only %d %s… commands ran", counts[kind], kind)
		}
	}
	s := it.Snapshot()
	gotSales := map[string]int64{}
	for id, sale := range s.Sales {
		gotSales[id] = sale.Quantity
	}
	if diff := cmp.Diff(m.sold, gotSales, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("final sales (-want +got):\n%s", diff)
	}
	gotHeld := map[string]int64{}
	for _, r := range s.Reservations {
		gotHeld[r.OrderID] = r.Quantity
	}
	if diff := cmp.Diff(m.reserved, gotHeld, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("final reservations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(m.receipts, s.RecentReceipts, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("final receipts (-want +got):\n%s", diff)
	}
	back, err := FromSnapshot(s)
	if err != nil {
		t.Fatalf("FromSnapshot(final) = %v", err)
	}
	if diff := cmp.Diff(s, back.Snapshot()); diff != "" {
		t.Fatalf("final round trip (-want +got):\n%s", diff)
	}
}

func TestLedgerChangesAreTakenOnce(t *testing.T) {
	it := &Item{}
	mustChange := func(changed bool, err error) {
		t.Helper()
		if err != nil || !changed {
			t.Fatalf("changed=%v err=%v", changed, err)
		}
	}
	mustChange(it.Receive("d", 10))
	for _, o := range []string{"a", "b", "c"} {
		mustChange(it.Reserve(o, 2, t0, time.Minute))
		mustChange(it.Commit(o, t0))
	}
	want := LedgerChange{Added: map[string]Sale{"a": {2, t0}, "b": {2, t0}, "c": {2, t0}}, Receipts: []Receipt{{"d", 10}}}
	if diff := cmp.Diff(want, it.TakeChange()); diff != "" {
		t.Fatalf("first write (-want +got):\n%s", diff)
	}
	if c := it.TakeChange(); !c.Empty() {
		t.Fatalf("taken twice: %+v", c)
	}
	mustChange(it.Return("a")) // stored: its row must go
	mustChange(it.Reserve("d", 1, t0, time.Minute))
	mustChange(it.Commit("d", t0))
	mustChange(it.Return("d")) // never stored: nothing to write
	if diff := cmp.Diff(LedgerChange{Added: map[string]Sale{}, Returned: []string{"a"}}, it.TakeChange()); diff != "" {
		t.Fatalf("second write (-want +got):\n%s", diff)
	}
	if err := it.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSalesLedgerWindow: an item keeps in memory the sales of the last
// LedgerWindow. An order created after the window began is known to hold no sale
// without the store; an older one (or one of unknown age) must be recalled, and
// with the store's answer its commit, reservation and return are exact. Compact
// drops only what is durable: a sale or a return no write has taken stays.
func TestSalesLedgerWindow(t *testing.T) {
	it := &Item{}
	mustDo(t, it, receive("rq-1", 20))
	for _, o := range []string{"o-old", "o-returned"} {
		mustDo(t, it, reserveAt(o, 2, t0))
		if _, err := it.Commit(o, t0); err != nil {
			t.Fatal(err)
		}
	}
	it.TakeChange() // written
	mustDo(t, it, ret("o-returned"))
	mustDo(t, it, reserveAt("o-unwritten", 1, t0))
	if _, err := it.Commit("o-unwritten", t0); err != nil {
		t.Fatal(err)
	}
	if !it.KnowsSale("o-any", time.Time{}) {
		t.Fatal("an item with its whole ledger in memory does not know an order")
	}
	late := t0.Add(LedgerWindow + 2*time.Minute)
	it.Compact(late)
	if it.KnowsSale("o-old", t0) {
		t.Fatal("a durable sale older than the window is still in memory")
	}
	if !it.KnowsSale("o-unwritten", t0) || !it.KnowsSale("o-returned", t0) {
		t.Fatal("Compact dropped a sale or a return no write has taken")
	}
	if err := it.Check(); err != nil {
		t.Fatalf("a part of the ledger in memory: %v", err)
	}
	if !it.KnowsSale("o-new", late) || it.KnowsSale("o-new", time.Time{}) || it.KnowsSale("o-new", late.Add(-LedgerWindow)) {
		t.Fatal("an order created within the window (past the clocks' skew) must be known; of unknown age, or at the window's start, not")
	}
	// With the store's answer, o-old's retried commit and reservation are
	// retries, and its return puts the units back once.
	it.RecallSale("o-old", Sale{Quantity: 2, At: t0}, true)
	runSteps(t, it, []step{
		{do: commit("o-old"), want: false, level: lv(17, 0, 3, 20)},
		{do: reserveAt("o-old", 2, late), want: false, level: lv(17, 0, 3, 20)},
		{do: ret("o-old"), want: true, level: lv(19, 0, 1, 20)},
		{do: ret("o-old"), want: false, level: lv(19, 0, 1, 20)},
	})
	// Not found in the store: known to hold none.
	it.RecallSale("o-never", Sale{}, false)
	if !it.KnowsSale("o-never", time.Time{}) {
		t.Fatal("an order the store has no sale for is not known to hold none")
	}
	runSteps(t, it, []step{{do: ret("o-never"), want: false, level: lv(19, 0, 1, 20)}})
	change := it.TakeChange()
	if !slices.Contains(change.Returned, "o-old") || !slices.Contains(change.Returned, "o-returned") {
		t.Fatalf("the write carries %+v; want o-old and o-returned returned", change)
	}
	// Once durable, the returns and the recalled sales leave memory.
	it.Compact(late.Add(compactEvery))
	if it.KnowsSale("o-returned", t0) || it.KnowsSale("o-never", t0) {
		t.Fatal("durable returns and recalled orders are kept past Compact")
	}
	back, err := FromSnapshot(it.Snapshot())
	if err != nil {
		t.Fatalf("FromSnapshot of a part of the ledger: %v", err)
	}
	if back.Level() != it.Level() || back.KnowsSale("o-old", t0) {
		t.Fatalf("restored %+v, knows o-old %v", back.Level(), back.KnowsSale("o-old", t0))
	}
}

// TestASaleTakesItsOrderToTheWrite: an order born in its sale goes to the write
// that holds the sale (LedgerChange.Born), once; a sale taken back before any
// write took it takes its order back too.
func TestASaleTakesItsOrderToTheWrite(t *testing.T) {
	it := &Item{}
	if _, err := it.Receive("rq", 5); err != nil {
		t.Fatal(err)
	}
	if changed, before, err := it.Sell("o1", 2, t0, []byte("order o1")); !changed || before || err != nil {
		t.Fatalf("Sell(o1) = %v, %v, %v", changed, before, err)
	}
	if changed, before, err := it.Sell("o1", 2, t0, []byte("again")); changed || !before || err != nil {
		t.Fatalf("Sell(o1) again = %v, %v, %v; want sold before", changed, before, err)
	}
	if _, err := it.Reserve("saga", 1, t0, ttl); err != nil {
		t.Fatal(err)
	}
	if changed, before, err := it.Sell("saga", 1, t0, nil); changed || !before || err != nil {
		t.Fatalf("Sell(a saga's order) = %v, %v, %v; want before, nothing sold", changed, before, err)
	}
	if _, _, err := it.Sell("o2", 3, t0, nil); !errors.Is(err, ErrOutOfStock) {
		t.Fatalf("Sell(o2, 3) with 2 left = %v, want ErrOutOfStock", err)
	}
	if _, _, err := it.Sell("o3", 2, t0, []byte("order o3")); err != nil {
		t.Fatal(err)
	}
	if _, err := it.Return("o3"); err != nil {
		t.Fatal(err)
	}
	c := it.TakeChange()
	if diff := cmp.Diff(map[string][]byte{"o1": []byte("order o1")}, c.Born); diff != "" {
		t.Fatalf("born orders (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]Sale{"o1": {Quantity: 2, At: t0}}, c.Added); diff != "" {
		t.Fatalf("sales (-want +got):\n%s", diff)
	}
	if got := it.TakeChange(); len(got.Born) != 0 {
		t.Fatalf("born orders taken twice: %v", got.Born)
	}
	if want := (Level{Available: 2, Reserved: 1, Sold: 2, Received: 5}); it.Level() != want {
		t.Fatalf("level %+v, want %+v", it.Level(), want)
	}
}
