package order

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// errBoom stands for any failure worth retrying (a timeout, a store outage).
var errBoom = errors.New("boom")

// fakeStock is an in-memory inventory of several SKUs, idempotent per (sku, order)
// like the real one, with switches to make calls fail.
type fakeStock struct {
	available map[string]int64
	reserved  map[string]int64 // by key(sku, order)
	sold      map[string]int64 // by key(sku, order)

	outOfStock     map[string]bool  // Reserve of this sku fails with ErrOutOfStock
	reserveErr     map[string]error // Reserve of this sku fails with this error
	commitErr      map[string]error // Commit of this sku fails with this error
	returnErr      map[string]error // Return of this sku fails with this error
	expireOnCommit map[string]bool  // the reservation expires just before its commit, once
	boughtOnExpiry map[string]bool  // units freed by that expiry are bought by another order

	calls []string // "Reserve A", "Commit B", … in the order they came
}

func newStock(available map[string]int64) *fakeStock {
	return &fakeStock{
		available:      available,
		reserved:       map[string]int64{},
		sold:           map[string]int64{},
		outOfStock:     map[string]bool{},
		reserveErr:     map[string]error{},
		commitErr:      map[string]error{},
		returnErr:      map[string]error{},
		expireOnCommit: map[string]bool{},
		boughtOnExpiry: map[string]bool{},
	}
}

func key(sku, orderID string) string { return sku + "/" + orderID }

func (s *fakeStock) Reserve(_ context.Context, sku, orderID string, qty int64) error {
	s.calls = append(s.calls, "Reserve "+sku)
	if err := s.reserveErr[sku]; err != nil {
		return err
	}
	k := key(sku, orderID)
	if q, ok := s.sold[k]; ok {
		if q != qty {
			return fmt.Errorf("fake: quantity changed for %s", k)
		}
		return nil
	}
	if q, ok := s.reserved[k]; ok {
		if q != qty {
			return fmt.Errorf("fake: quantity changed for %s", k)
		}
		return nil
	}
	if s.outOfStock[sku] || qty > s.available[sku] {
		// wrapped, as the grain adapter does
		return fmt.Errorf("%w: %s", ErrOutOfStock, sku)
	}
	s.available[sku] -= qty
	s.reserved[k] = qty
	return nil
}

func (s *fakeStock) Commit(_ context.Context, sku, orderID string) error {
	s.calls = append(s.calls, "Commit "+sku)
	if err := s.commitErr[sku]; err != nil {
		return err
	}
	k := key(sku, orderID)
	if _, ok := s.sold[k]; ok {
		return nil
	}
	if s.expireOnCommit[sku] {
		delete(s.expireOnCommit, sku)
		q := s.reserved[k]
		s.expire(sku, orderID)
		if s.boughtOnExpiry[sku] {
			s.available[sku] -= q
			s.sold[key(sku, "other")] += q
		}
	}
	q, ok := s.reserved[k]
	if !ok {
		return fmt.Errorf("%w: %s", ErrReservationMissing, sku)
	}
	delete(s.reserved, k)
	s.sold[k] = q
	return nil
}

func (s *fakeStock) Release(ctx context.Context, sku, orderID string) error {
	s.calls = append(s.calls, "Release "+sku)
	if err := ctx.Err(); err != nil { // as a grain call would: no time left, no call
		return err
	}
	s.expire(sku, orderID)
	return nil
}

func (s *fakeStock) Return(_ context.Context, sku, orderID string) error {
	s.calls = append(s.calls, "Return "+sku)
	if err := s.returnErr[sku]; err != nil {
		return err
	}
	k := key(sku, orderID)
	if q, ok := s.sold[k]; ok {
		delete(s.sold, k)
		s.available[sku] += q
	}
	return nil
}

// expire drops a reservation and puts its units back, as the inventory's timer does.
func (s *fakeStock) expire(sku, orderID string) {
	k := key(sku, orderID)
	if q, ok := s.reserved[k]; ok {
		delete(s.reserved, k)
		s.available[sku] += q
	}
}

// stockState is what a fakeStock holds, for comparing.
type stockState struct {
	Available, Reserved, Sold map[string]int64
}

func (s *fakeStock) state() stockState {
	return stockState{Available: s.available, Reserved: s.reserved, Sold: s.sold}
}

func assertStock(t *testing.T, s *fakeStock, want stockState) {
	t.Helper()
	if diff := cmp.Diff(want, s.state(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("stock (-want +got):\n%s", diff)
	}
}

// saved is what a save call saw.
type saved struct {
	Status    Status
	UpdatedAt time.Time
}

// fakeSaver records every successful save in order; failAt makes saving an order in
// that status fail.
type fakeSaver struct {
	saves  []saved
	failAt map[Status]error
}

func newSaver() *fakeSaver { return &fakeSaver{failAt: map[Status]error{}} }

func (f *fakeSaver) save(_ context.Context, o *Order) error {
	if err := f.failAt[o.Status]; err != nil {
		return err
	}
	f.saves = append(f.saves, saved{o.Status, o.UpdatedAt})
	return nil
}

func (f *fakeSaver) statuses() []Status {
	var out []Status
	for _, s := range f.saves {
		out = append(out, s.Status)
	}
	return out
}

func assertSaved(t *testing.T, f *fakeSaver, want []Status) {
	t.Helper()
	if diff := cmp.Diff(want, f.statuses(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("saved statuses (-want +got):\n%s", diff)
	}
}

// clock returns t0+1s, t0+2s, … so that every now() call is visible.
type clock struct{ calls int }

func (c *clock) now() time.Time {
	c.calls++
	return t0.Add(time.Duration(c.calls) * time.Second)
}

const (
	acct = "acct-1"
	hash = "hash-1"
)

var (
	addr = Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "FR"}

	lineA = Line{SKU: "A", PhoneID: "p-a", Name: "Phone A", Quantity: 2, UnitPriceCents: 10000}
	lineB = Line{SKU: "B", PhoneID: "p-b", Name: "Phone B", Quantity: 1, UnitPriceCents: 25050}
	lineC = Line{SKU: "C", PhoneID: "p-c", Name: "Phone C", Quantity: 3, UnitPriceCents: 999}
)

// placed returns a pending order for lines, placed at t0.
func placed(t *testing.T, lines ...Line) *Order {
	t.Helper()
	o := &Order{}
	replay, err := o.Place(ID(acct, "key-1"), acct, hash, "EUR", lines, addr, nil, 0, t0)
	if err != nil || replay {
		t.Fatalf("Place() = %v, %v; want false, nil", replay, err)
	}
	return o
}

// withStatus returns a copy of a placed order as a snapshot in status s.
func withStatus(t *testing.T, s Status, lines ...Line) *Order {
	t.Helper()
	o := placed(t, lines...)
	o.Status = s
	return o
}

func TestID(t *testing.T) {
	base := ID("acct-1", "key-1")
	if base != ID("acct-1", "key-1") {
		t.Fatalf("ID is not deterministic")
	}
	if !strings.HasPrefix(base, "ord_") || len(base) != len("ord_")+24 {
		t.Fatalf("ID = %q, want ord_ and 24 hex digits", base)
	}
	tests := []struct {
		name         string
		account, key string
	}{
		{"differs_by_account", "acct-2", "key-1"},
		{"differs_by_key", "acct-1", "key-2"},
		{"separator_keeps_account_and_key_apart", "acct-", "1key-1"},
		{"empty_key_differs", "acct-1", ""},
	}
	seen := map[string]string{base: "base"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := ID(tc.account, tc.key)
			if prev, dup := seen[id]; dup {
				t.Fatalf("ID(%q, %q) = %q, same as %s", tc.account, tc.key, id, prev)
			}
			seen[id] = tc.name
		})
	}
}

func TestPlace(t *testing.T) {
	lines := []Line{lineA, lineB}
	wantTotal := int64(2*10000 + 1*25050)
	id := ID(acct, "key-1")
	later := t0.Add(time.Hour)

	tests := []struct {
		name       string
		start      func(t *testing.T) *Order
		account    string
		hash       string
		lines      []Line
		wantReplay bool
		wantErr    error
		want       func(start Order) Order
	}{
		{
			name:  "new_order_is_pending_with_total",
			start: func(t *testing.T) *Order { return &Order{} },
			lines: lines,
			want: func(Order) Order {
				return Order{ID: id, AccountID: acct, RequestHash: hash, Status: StatusPending,
					Lines: lines, Address: addr, Currency: "EUR", TotalCents: wantTotal,
					CreatedAt: later, UpdatedAt: later}
			},
		},
		{
			name:    "empty_lines_fails_empty_and_order_stays_unplaced",
			start:   func(t *testing.T) *Order { return &Order{} },
			wantErr: ErrEmpty,
			want:    func(Order) Order { return Order{} },
		},
		{
			name:    "zero_quantity_line_fails",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{lineA, {SKU: "B", Quantity: 0, UnitPriceCents: 1}},
			wantErr: ErrInvalidLine,
			want:    func(Order) Order { return Order{} },
		},
		{
			name:    "negative_price_line_fails",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{{SKU: "B", Quantity: 1, UnitPriceCents: -1}},
			wantErr: ErrInvalidLine,
			want:    func(Order) Order { return Order{} },
		},
		{
			name:    "same_sku_on_two_lines_fails_and_order_stays_unplaced",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{lineA, lineA},
			wantErr: ErrInvalidLine,
			want:    func(Order) Order { return Order{} },
		},
		{
			name:       "replay_same_account_and_hash_reports_replay_and_changes_nothing",
			start:      func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			lines:      []Line{lineC},
			wantReplay: true,
			want:       func(start Order) Order { return start },
		},
		{
			// a retried checkout comes from a cart already emptied into the order
			name:       "replay_with_empty_lines_is_still_a_replay",
			start:      func(t *testing.T) *Order { return withStatus(t, StatusConfirmed, lineA, lineB) },
			wantReplay: true,
			want:       func(start Order) Order { return start },
		},
		{
			name:       "replay_of_confirmed_order_reports_replay",
			start:      func(t *testing.T) *Order { return withStatus(t, StatusConfirmed, lineA) },
			lines:      lines,
			wantReplay: true,
			want:       func(start Order) Order { return start },
		},
		{
			name:    "different_hash_fails_idempotency_mismatch",
			start:   func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			hash:    "hash-2",
			lines:   lines,
			wantErr: ErrIdempotencyMismatch,
			want:    func(start Order) Order { return start },
		},
		{
			name:    "different_account_fails_idempotency_mismatch",
			start:   func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			account: "acct-2",
			lines:   lines,
			wantErr: ErrIdempotencyMismatch,
			want:    func(start Order) Order { return start },
		},
		{
			name: "rejected_order_placed_again_is_pending_and_keeps_created_at",
			start: func(t *testing.T) *Order {
				o := withStatus(t, StatusRejected, lineC)
				o.RejectedSKUs = []string{"C"}
				return o
			},
			lines: lines,
			want: func(Order) Order {
				return Order{ID: id, AccountID: acct, RequestHash: hash, Status: StatusPending,
					Lines: lines, Address: addr, Currency: "EUR", TotalCents: wantTotal,
					CreatedAt: t0, UpdatedAt: later}
			},
		},
		{
			name:    "rejected_order_placed_again_with_empty_lines_fails_empty_and_stays_rejected",
			start:   func(t *testing.T) *Order { return withStatus(t, StatusRejected, lineC) },
			wantErr: ErrEmpty,
			want:    func(start Order) Order { return start },
		},
		{
			name:    "rejected_order_with_different_hash_fails_idempotency_mismatch",
			start:   func(t *testing.T) *Order { return withStatus(t, StatusRejected, lineC) },
			hash:    "hash-2",
			lines:   lines,
			wantErr: ErrIdempotencyMismatch,
			want:    func(start Order) Order { return start },
		},
		{
			name:    "rejected_order_of_other_account_fails_idempotency_mismatch",
			start:   func(t *testing.T) *Order { return withStatus(t, StatusRejected, lineC) },
			account: "acct-2",
			lines:   lines,
			wantErr: ErrIdempotencyMismatch,
			want:    func(start Order) Order { return start },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.start(t)
			start := *o
			account, h := acct, hash
			if tc.account != "" {
				account = tc.account
			}
			if tc.hash != "" {
				h = tc.hash
			}
			replay, err := o.Place(id, account, h, "EUR", tc.lines, addr, nil, 0, later)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Place() unexpected error %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Place() error = %v, want %v", err, tc.wantErr)
			}
			if replay != tc.wantReplay {
				t.Fatalf("Place() replay = %v, want %v", replay, tc.wantReplay)
			}
			if diff := cmp.Diff(tc.want(start), *o); diff != "" {
				t.Fatalf("order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlaceCopiesLines(t *testing.T) {
	lines := []Line{lineA}
	o := &Order{}
	if _, err := o.Place("id", acct, hash, "EUR", lines, addr, nil, 0, t0); err != nil {
		t.Fatalf("Place() = %v", err)
	}
	lines[0].Quantity = 99
	if o.Lines[0].Quantity != lineA.Quantity {
		t.Fatalf("order shares the caller's lines: quantity %d", o.Lines[0].Quantity)
	}
}

func TestAdvance(t *testing.T) {
	type tc struct {
		name     string
		order    func(t *testing.T) *Order
		stock    func() *fakeStock
		failSave map[Status]error

		wantErr      error
		wantRejected []string // SKUs of the OutOfStockError, when wantErr is ErrOutOfStock
		wantStatus   Status
		wantSaved    []Status
		wantStock    stockState
		wantUpdated  time.Time
		wantSKUs     []string // o.RejectedSKUs
	}
	full := func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 5, "C": 5}) }
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }

	tests := []tc{
		{
			name:        "all_lines_reserved_saves_committing_then_confirmed_and_sells_stock",
			order:       func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock:       full,
			wantStatus:  StatusConfirmed,
			wantSaved:   []Status{StatusCommitting, StatusConfirmed},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4, "C": 2}, Sold: map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3}},
			wantUpdated: t0.Add(2 * time.Second),
		},
		{
			name:        "line_taking_all_available_stock_is_confirmed",
			order:       func(t *testing.T) *Order { return placed(t, lineA) },
			stock:       func() *fakeStock { return newStock(map[string]int64{"A": 2}) },
			wantStatus:  StatusConfirmed,
			wantSaved:   []Status{StatusCommitting, StatusConfirmed},
			wantStock:   stockState{Available: map[string]int64{"A": 0}, Sold: map[string]int64{k("A"): 2}},
			wantUpdated: t0.Add(2 * time.Second),
		},
		{
			name:         "one_line_short_rejects_keeping_nothing_and_saving_nothing",
			order:        func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock:        func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 0, "C": 5}) },
			wantErr:      ErrOutOfStock,
			wantRejected: []string{"B"},
			wantStatus:   StatusRejected,
			wantSKUs:     []string{"B"},
			wantStock:    stockState{Available: map[string]int64{"A": 5, "B": 0, "C": 5}},
			wantUpdated:  t0.Add(time.Second),
		},
		{
			name:  "every_short_line_is_listed",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock: func() *fakeStock {
				s := full()
				s.outOfStock["A"] = true
				s.available["C"] = 2
				return s
			},
			wantErr:      ErrOutOfStock,
			wantRejected: []string{"A", "C"},
			wantStatus:   StatusRejected,
			wantSKUs:     []string{"A", "C"},
			wantStock:    stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 2}},
			wantUpdated:  t0.Add(time.Second),
		},
		{
			name:  "generic_reserve_error_returns_error_stays_pending_and_releases_all",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock: func() *fakeStock {
				s := full()
				s.reserveErr["B"] = errBoom
				return s
			},
			wantErr:     errBoom,
			wantStatus:  StatusPending,
			wantStock:   stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5}},
			wantUpdated: t0,
		},
		{
			name:  "generic_error_on_last_line_releases_all_earlier_lines",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock: func() *fakeStock {
				s := full()
				s.reserveErr["C"] = errBoom
				return s
			},
			wantErr:     errBoom,
			wantStatus:  StatusPending,
			wantStock:   stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5}},
			wantUpdated: t0,
		},
		{
			name:        "save_failure_at_committing_releases_reservations_and_returns_error",
			order:       func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock:       full,
			failSave:    map[Status]error{StatusCommitting: errBoom},
			wantErr:     errBoom,
			wantStatus:  StatusPending,
			wantStock:   stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5}},
			wantUpdated: t0,
		},
		{
			// Another activation of the order saved "committing" first: the
			// reservations under the order's id are the ones it is committing.
			name:        "superseded_save_at_committing_keeps_the_winners_reservations",
			order:       func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock:       full,
			failSave:    map[Status]error{StatusCommitting: fmt.Errorf("%w: stale", ErrSuperseded)},
			wantErr:     ErrSuperseded,
			wantStatus:  StatusPending,
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4, "C": 5}, Reserved: map[string]int64{k("A"): 2, k("B"): 1}},
			wantUpdated: t0,
		},
		{
			name:  "resume_from_committing_commits_and_confirms",
			order: func(t *testing.T) *Order { return withStatus(t, StatusCommitting, lineA, lineB) },
			stock: func() *fakeStock {
				s := newStock(map[string]int64{"A": 3, "B": 4})
				s.reserved[k("A")], s.reserved[k("B")] = 2, 1
				return s
			},
			wantStatus:  StatusConfirmed,
			wantSaved:   []Status{StatusConfirmed},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4}, Sold: map[string]int64{k("A"): 2, k("B"): 1}},
			wantUpdated: t0.Add(time.Second),
		},
		{
			name:  "resume_from_committing_with_a_line_already_sold_confirms",
			order: func(t *testing.T) *Order { return withStatus(t, StatusCommitting, lineA, lineB) },
			stock: func() *fakeStock {
				s := newStock(map[string]int64{"A": 3, "B": 4})
				s.sold[k("A")], s.reserved[k("B")] = 2, 1
				return s
			},
			wantStatus:  StatusConfirmed,
			wantSaved:   []Status{StatusConfirmed},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4}, Sold: map[string]int64{k("A"): 2, k("B"): 1}},
			wantUpdated: t0.Add(time.Second),
		},
		{
			name:  "commit_sees_reservation_missing_reserves_again_and_confirms",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock: func() *fakeStock {
				s := full()
				s.expireOnCommit["B"] = true
				return s
			},
			wantStatus:  StatusConfirmed,
			wantSaved:   []Status{StatusCommitting, StatusConfirmed},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4, "C": 5}, Sold: map[string]int64{k("A"): 2, k("B"): 1}},
			wantUpdated: t0.Add(2 * time.Second),
		},
		{
			name:  "resume_with_expired_reservation_and_stock_gone_returns_committed_lines_and_saves_rejected",
			order: func(t *testing.T) *Order { return withStatus(t, StatusCommitting, lineA, lineB, lineC) },
			stock: func() *fakeStock {
				// A reserved, B's reservation expired and its units were bought by others,
				// C still reserved
				s := newStock(map[string]int64{"A": 3, "B": 0, "C": 2})
				s.reserved[k("A")], s.reserved[k("C")] = 2, 3
				return s
			},
			wantErr:      ErrOutOfStock,
			wantRejected: []string{"B"},
			wantStatus:   StatusRejected,
			wantSaved:    []Status{StatusRejected},
			wantSKUs:     []string{"B"},
			wantStock:    stockState{Available: map[string]int64{"A": 5, "B": 0, "C": 5}},
			wantUpdated:  t0.Add(time.Second),
		},
		{
			name:  "commit_sees_reservation_missing_and_stock_gone_returns_committed_lines_and_saves_rejected",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			stock: func() *fakeStock {
				s := full()
				s.available["B"] = 1
				s.expireOnCommit["B"] = true
				s.boughtOnExpiry["B"] = true
				return s
			},
			wantErr:      ErrOutOfStock,
			wantRejected: []string{"B"},
			wantStatus:   StatusRejected,
			wantSaved:    []Status{StatusCommitting, StatusRejected},
			wantSKUs:     []string{"B"},
			wantStock: stockState{
				Available: map[string]int64{"A": 5, "B": 0, "C": 5},
				Sold:      map[string]int64{key("B", "other"): 1},
			},
			wantUpdated: t0.Add(2 * time.Second),
		},
		{
			name:  "generic_commit_error_returns_error_and_stays_committing",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock: func() *fakeStock {
				s := full()
				s.commitErr["B"] = errBoom
				return s
			},
			wantErr:     errBoom,
			wantStatus:  StatusCommitting,
			wantSaved:   []Status{StatusCommitting},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 4, "C": 5}, Reserved: map[string]int64{k("B"): 1}, Sold: map[string]int64{k("A"): 2}},
			wantUpdated: t0.Add(time.Second),
		},
		{
			name:        "save_failure_at_confirmed_stays_committing_with_stock_sold",
			order:       func(t *testing.T) *Order { return placed(t, lineA) },
			stock:       full,
			failSave:    map[Status]error{StatusConfirmed: errBoom},
			wantErr:     errBoom,
			wantStatus:  StatusCommitting,
			wantSaved:   []Status{StatusCommitting},
			wantStock:   stockState{Available: map[string]int64{"A": 3, "B": 5, "C": 5}, Sold: map[string]int64{k("A"): 2}},
			wantUpdated: t0.Add(time.Second),
		},
		{
			name:        "confirmed_order_does_nothing",
			order:       func(t *testing.T) *Order { return withStatus(t, StatusConfirmed, lineA) },
			stock:       full,
			wantStatus:  StatusConfirmed,
			wantStock:   stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5}},
			wantUpdated: t0,
		},
		{
			name: "rejected_order_reports_its_skus_and_does_nothing",
			order: func(t *testing.T) *Order {
				o := withStatus(t, StatusRejected, lineA, lineB)
				o.RejectedSKUs = []string{"B"}
				return o
			},
			stock:        full,
			wantErr:      ErrOutOfStock,
			wantRejected: []string{"B"},
			wantStatus:   StatusRejected,
			wantSKUs:     []string{"B"},
			wantStock:    stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5}},
			wantUpdated:  t0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.order(t)
			stock := tc.stock()
			saver := newSaver()
			for s, err := range tc.failSave {
				saver.failAt[s] = err
			}
			c := &clock{}
			err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now)
			assertErr(t, err, tc.wantErr)
			if tc.wantRejected != nil {
				var oos *OutOfStockError
				if !errors.As(err, &oos) {
					t.Fatalf("Advance() error %T %v, want *OutOfStockError", err, err)
				}
				if diff := cmp.Diff(tc.wantRejected, oos.SKUs); diff != "" {
					t.Fatalf("OutOfStockError.SKUs (-want +got):\n%s", diff)
				}
			}
			if o.Status != tc.wantStatus {
				t.Fatalf("status = %s, want %s", o.Status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantSKUs, o.RejectedSKUs); diff != "" {
				t.Fatalf("RejectedSKUs (-want +got):\n%s", diff)
			}
			if !o.UpdatedAt.Equal(tc.wantUpdated) {
				t.Fatalf("UpdatedAt = %v, want %v", o.UpdatedAt, tc.wantUpdated)
			}
			assertSaved(t, saver, tc.wantSaved)
			assertStock(t, stock, tc.wantStock)
			// what was saved is what the order says now
			if n := len(saver.saves); n > 0 && o.Status != StatusPending {
				if last := saver.saves[n-1]; last.Status == o.Status && !last.UpdatedAt.Equal(o.UpdatedAt) {
					t.Fatalf("saved UpdatedAt %v, order has %v", last.UpdatedAt, o.UpdatedAt)
				}
			}
		})
	}
}

func assertErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil && err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func TestAdvanceStockCalls(t *testing.T) {
	tests := []struct {
		name  string
		order func(t *testing.T) *Order
		setup func(s *fakeStock)
		want  []string
	}{
		{
			name:  "generic_reserve_error_stops_reserving_later_lines",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			setup: func(s *fakeStock) { s.reserveErr["B"] = errBoom },
			want:  []string{"Reserve A", "Reserve B", "Release A", "Release B", "Release C"},
		},
		{
			name:  "short_line_still_tries_later_lines_to_list_them_all",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB, lineC) },
			setup: func(s *fakeStock) { s.available["B"] = 0 },
			want:  []string{"Reserve A", "Reserve B", "Reserve C", "Release A", "Release B", "Release C"},
		},
		{
			name:  "confirm_reserves_all_then_commits_all",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			setup: func(s *fakeStock) {},
			want:  []string{"Reserve A", "Reserve B", "Commit A", "Commit B"},
		},
		{
			name:  "missing_reservation_is_taken_again_before_commit",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			setup: func(s *fakeStock) { s.expireOnCommit["A"] = true },
			want:  []string{"Reserve A", "Reserve B", "Commit A", "Reserve A", "Commit A", "Commit B"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.order(t)
			stock := newStock(map[string]int64{"A": 5, "B": 5, "C": 5})
			tc.setup(stock)
			_ = o.Advance(context.Background(), Ports{Stock: stock}, newSaver().save, (&clock{}).now)
			if diff := cmp.Diff(tc.want, stock.calls); diff != "" {
				t.Fatalf("stock calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdvanceRetries checks that a saga stopped by an error finishes when called again.
func TestAdvanceRetries(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	tests := []struct {
		name       string
		breakIt    func(s *fakeStock, f *fakeSaver)
		fix        func(s *fakeStock, f *fakeSaver)
		firstState Status
		firstSaved []Status
	}{
		{
			name:       "retry_after_reserve_error_confirms",
			breakIt:    func(s *fakeStock, _ *fakeSaver) { s.reserveErr["B"] = errBoom },
			fix:        func(s *fakeStock, _ *fakeSaver) { delete(s.reserveErr, "B") },
			firstState: StatusPending,
		},
		{
			name:       "retry_after_save_failure_at_committing_confirms",
			breakIt:    func(_ *fakeStock, f *fakeSaver) { f.failAt[StatusCommitting] = errBoom },
			fix:        func(_ *fakeStock, f *fakeSaver) { delete(f.failAt, StatusCommitting) },
			firstState: StatusPending,
		},
		{
			name:       "retry_after_commit_error_confirms",
			breakIt:    func(s *fakeStock, _ *fakeSaver) { s.commitErr["B"] = errBoom },
			fix:        func(s *fakeStock, _ *fakeSaver) { delete(s.commitErr, "B") },
			firstState: StatusCommitting,
			firstSaved: []Status{StatusCommitting},
		},
		{
			name:       "retry_after_save_failure_at_confirmed_confirms",
			breakIt:    func(_ *fakeStock, f *fakeSaver) { f.failAt[StatusConfirmed] = errBoom },
			fix:        func(_ *fakeStock, f *fakeSaver) { delete(f.failAt, StatusConfirmed) },
			firstState: StatusCommitting,
			firstSaved: []Status{StatusCommitting},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := placed(t, lineA, lineB)
			stock := newStock(map[string]int64{"A": 5, "B": 5})
			saver := newSaver()
			c := &clock{}
			tc.breakIt(stock, saver)
			err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now)
			assertErr(t, err, errBoom)
			if o.Status != tc.firstState {
				t.Fatalf("status after failure = %s, want %s", o.Status, tc.firstState)
			}
			if got, want := o.Unfinished(), tc.firstState == StatusCommitting; got != want {
				t.Fatalf("Unfinished() after failure = %v, want %v", got, want)
			}
			assertSaved(t, saver, tc.firstSaved)

			tc.fix(stock, saver)
			if err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now); err != nil {
				t.Fatalf("retry: Advance() = %v", err)
			}
			if o.Status != StatusConfirmed || o.Unfinished() {
				t.Fatalf("status after retry = %s, want confirmed", o.Status)
			}
			want := append(tc.firstSaved, StatusConfirmed)
			if tc.firstState == StatusPending {
				want = []Status{StatusCommitting, StatusConfirmed}
			}
			assertSaved(t, saver, want)
			assertStock(t, stock, stockState{
				Available: map[string]int64{"A": 3, "B": 4},
				Sold:      map[string]int64{k("A"): 2, k("B"): 1},
			})
		})
	}
}

// TestReleaseOutlivesTheRequest: a checkout that failed because its request ran
// out of time still releases what it reserved, so the units are back on sale at
// once, not when the reservations expire.
func TestReleaseOutlivesTheRequest(t *testing.T) {
	o := placed(t, lineA, lineB)
	stock := newStock(map[string]int64{"A": 5, "B": 5})
	stock.reserveErr["B"] = context.DeadlineExceeded
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the request's time is up when the saga compensates
	err := o.Advance(ctx, Ports{Stock: stock}, newSaver().save, (&clock{}).now)
	assertErr(t, err, context.DeadlineExceeded)
	if stock.available["A"] != 5 || len(stock.reserved) != 0 {
		t.Fatalf("after the failed checkout: available %v, reserved %v; want A's 2 units released", stock.available, stock.reserved)
	}
}

func TestRejectedOrderPlacedAgainConfirmsWhenStockIsBack(t *testing.T) {
	id := ID(acct, "key-1")
	o := placed(t, lineA, lineB)
	stock := newStock(map[string]int64{"A": 5, "B": 0})
	saver := newSaver()
	c := &clock{}

	err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now)
	assertErr(t, err, ErrOutOfStock)
	if o.Status != StatusRejected {
		t.Fatalf("status = %s, want rejected", o.Status)
	}

	stock.available["B"] = 1
	replay, err := o.Place(id, acct, hash, "EUR", []Line{lineA, lineB}, addr, nil, 0, t0.Add(time.Hour))
	if err != nil || replay {
		t.Fatalf("Place() again = %v, %v; want false, nil", replay, err)
	}
	if o.Status != StatusPending || o.RejectedSKUs != nil {
		t.Fatalf("placed again: status %s, rejected %v; want pending, none", o.Status, o.RejectedSKUs)
	}
	if err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now); err != nil {
		t.Fatalf("Advance() = %v", err)
	}
	if o.Status != StatusConfirmed {
		t.Fatalf("status = %s, want confirmed", o.Status)
	}
	assertSaved(t, saver, []Status{StatusCommitting, StatusConfirmed})
	assertStock(t, stock, stockState{
		Available: map[string]int64{"A": 3, "B": 0},
		Sold:      map[string]int64{key("A", id): 2, key("B", id): 1},
	})
}

// confirmed runs the saga to confirmation on a fresh stock.
func confirmed(t *testing.T) (*Order, *fakeStock, *fakeSaver, *clock) {
	t.Helper()
	o := placed(t, lineA, lineB)
	stock := newStock(map[string]int64{"A": 5, "B": 5})
	saver := newSaver()
	c := &clock{}
	if err := o.Advance(context.Background(), Ports{Stock: stock}, saver.save, c.now); err != nil {
		t.Fatalf("Advance() = %v", err)
	}
	if o.Status != StatusConfirmed {
		t.Fatalf("status = %s, want confirmed", o.Status)
	}
	saver.saves = nil
	return o, stock, saver, c
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	unsold := stockState{Available: map[string]int64{"A": 5, "B": 5}}

	t.Run("cancel_of_confirmed_saves_cancelling_then_cancelled_and_returns_stock", func(t *testing.T) {
		o, stock, saver, c := confirmed(t)
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		if o.Status != StatusCancelling || !o.Unfinished() {
			t.Fatalf("after Cancel: status %s, want cancelling and unfinished", o.Status)
		}
		if err := o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now); err != nil {
			t.Fatalf("Advance() = %v", err)
		}
		if o.Status != StatusCancelled || o.Unfinished() {
			t.Fatalf("after Advance: status %s, want cancelled and finished", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)

		// cancelling twice is fine and changes nothing
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("second Cancel() = %v", err)
		}
		if err := o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now); err != nil {
			t.Fatalf("second Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status %s, want cancelled", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)
	})

	t.Run("cancel_while_cancelling_is_a_noop", func(t *testing.T) {
		o, _, saver, c := confirmed(t)
		o.Status = StatusCancelling
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		if o.Status != StatusCancelling {
			t.Fatalf("status %s, want cancelling", o.Status)
		}
		assertSaved(t, saver, nil)
	})

	t.Run("cancel_save_failure_keeps_confirmed", func(t *testing.T) {
		o, stock, saver, c := confirmed(t)
		before := o.UpdatedAt
		saver.failAt[StatusCancelling] = errBoom
		assertErr(t, o.Cancel(ctx, saver.save, c.now), errBoom)
		if o.Status != StatusConfirmed || !o.UpdatedAt.Equal(before) {
			t.Fatalf("after failed Cancel: status %s updated %v; want confirmed, %v", o.Status, o.UpdatedAt, before)
		}
		assertSaved(t, saver, nil)
		assertStock(t, stock, stockState{
			Available: map[string]int64{"A": 3, "B": 4},
			Sold:      map[string]int64{key("A", o.ID): 2, key("B", o.ID): 1},
		})
	})

	t.Run("return_failure_leaves_cancelling_and_retry_cancels", func(t *testing.T) {
		o, stock, saver, c := confirmed(t)
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		stock.returnErr["B"] = errBoom
		assertErr(t, o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now), errBoom)
		if o.Status != StatusCancelling {
			t.Fatalf("status %s, want cancelling", o.Status)
		}
		assertStock(t, stock, stockState{
			Available: map[string]int64{"A": 5, "B": 4},
			Sold:      map[string]int64{key("B", o.ID): 1},
		})
		delete(stock.returnErr, "B")
		if err := o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now); err != nil {
			t.Fatalf("retry Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status %s, want cancelled", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)
	})

	t.Run("save_failure_at_cancelled_stays_cancelling_and_retry_cancels", func(t *testing.T) {
		o, stock, saver, c := confirmed(t)
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		saver.failAt[StatusCancelled] = errBoom
		assertErr(t, o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now), errBoom)
		if o.Status != StatusCancelling {
			t.Fatalf("status %s, want cancelling", o.Status)
		}
		assertStock(t, stock, unsold)
		delete(saver.failAt, StatusCancelled)
		if err := o.Advance(ctx, Ports{Stock: stock}, saver.save, c.now); err != nil {
			t.Fatalf("retry Advance() = %v", err)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)
	})

	t.Run("resume_from_cancelling_returns_stock_and_cancels", func(t *testing.T) {
		o := withStatus(t, StatusCancelling, lineA, lineB)
		stock := newStock(map[string]int64{"A": 3, "B": 5})
		stock.sold[key("A", o.ID)] = 2 // B was already returned before the crash
		saver := newSaver()
		if err := o.Advance(ctx, Ports{Stock: stock}, saver.save, (&clock{}).now); err != nil {
			t.Fatalf("Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status %s, want cancelled", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelled})
		assertStock(t, stock, unsold)
	})

	for _, s := range []Status{StatusPending, StatusCommitting, StatusRejected, StatusShipped, StatusDelivered} {
		t.Run("cancel_of_"+string(s)+"_fails_transition", func(t *testing.T) {
			o := withStatus(t, s, lineA)
			saver := newSaver()
			assertErr(t, o.Cancel(ctx, saver.save, (&clock{}).now), ErrTransition)
			if o.Status != s {
				t.Fatalf("status %s, want %s", o.Status, s)
			}
			assertSaved(t, saver, nil)
		})
	}
}

func TestShipAndDeliver(t *testing.T) {
	ship := func(o *Order, f *fakeSaver, c *clock) error { return o.Ship(context.Background(), f.save, c.now) }
	deliver := func(o *Order, f *fakeSaver, c *clock) error {
		return o.Deliver(context.Background(), f.save, c.now)
	}
	type op func(*Order, *fakeSaver, *clock) error
	tests := []struct {
		name       string
		from       Status
		ops        []op
		failSave   Status
		wantErr    error // of the last op
		wantStatus Status
		wantSaved  []Status
	}{
		{"ship_of_confirmed_saves_shipped", StatusConfirmed, []op{ship}, "", nil, StatusShipped, []Status{StatusShipped}},
		{"ship_twice_saves_once", StatusConfirmed, []op{ship, ship}, "", nil, StatusShipped, []Status{StatusShipped}},
		{"deliver_of_shipped_saves_delivered", StatusShipped, []op{deliver}, "", nil, StatusDelivered, []Status{StatusDelivered}},
		{"ship_then_deliver_then_repeats", StatusConfirmed, []op{ship, deliver, deliver, ship}, "", ErrTransition, StatusDelivered, []Status{StatusShipped, StatusDelivered}},
		{"deliver_of_confirmed_fails_transition", StatusConfirmed, []op{deliver}, "", ErrTransition, StatusConfirmed, nil},
		{"ship_of_pending_fails_transition", StatusPending, []op{ship}, "", ErrTransition, StatusPending, nil},
		{"ship_of_committing_fails_transition", StatusCommitting, []op{ship}, "", ErrTransition, StatusCommitting, nil},
		{"ship_of_cancelled_fails_transition", StatusCancelled, []op{ship}, "", ErrTransition, StatusCancelled, nil},
		{"ship_of_cancelling_fails_transition", StatusCancelling, []op{ship}, "", ErrTransition, StatusCancelling, nil},
		{"ship_of_rejected_fails_transition", StatusRejected, []op{ship}, "", ErrTransition, StatusRejected, nil},
		{"deliver_of_cancelled_fails_transition", StatusCancelled, []op{deliver}, "", ErrTransition, StatusCancelled, nil},
		{"ship_save_failure_keeps_confirmed", StatusConfirmed, []op{ship}, StatusShipped, errBoom, StatusConfirmed, nil},
		{"deliver_save_failure_keeps_shipped", StatusShipped, []op{deliver}, StatusDelivered, errBoom, StatusShipped, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := withStatus(t, tc.from, lineA)
			saver := newSaver()
			if tc.failSave != "" {
				saver.failAt[tc.failSave] = errBoom
			}
			c := &clock{}
			var err error
			for i, do := range tc.ops {
				err = do(o, saver, c)
				if i < len(tc.ops)-1 && err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			assertErr(t, err, tc.wantErr)
			if o.Status != tc.wantStatus {
				t.Fatalf("status %s, want %s", o.Status, tc.wantStatus)
			}
			assertSaved(t, saver, tc.wantSaved)
			wantUpdated := t0
			if n := len(saver.saves); n > 0 {
				wantUpdated = saver.saves[n-1].UpdatedAt
			}
			if !o.UpdatedAt.Equal(wantUpdated) {
				t.Fatalf("UpdatedAt %v, want %v", o.UpdatedAt, wantUpdated)
			}
		})
	}
}

func TestUnfinished(t *testing.T) {
	tests := []struct {
		status Status
		want   bool
	}{
		{StatusPending, false},
		{StatusCommitting, true},
		{StatusConfirmed, false},
		{StatusRejected, false},
		{StatusCancelling, true},
		{StatusCancelled, false},
		{StatusShipped, false},
		{StatusDelivered, false},
	}
	for _, tc := range tests {
		name := string(tc.status) + "_is_finished"
		if tc.want {
			name = string(tc.status) + "_is_unfinished"
		}
		t.Run(name, func(t *testing.T) {
			o := &Order{Status: tc.status}
			if got := o.Unfinished(); got != tc.want {
				t.Fatalf("Unfinished() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExists(t *testing.T) {
	if (&Order{}).Exists() {
		t.Fatalf("zero order exists")
	}
	if !placed(t, lineA).Exists() {
		t.Fatalf("placed order does not exist")
	}
}

func TestOutOfStockError(t *testing.T) {
	err := error(&OutOfStockError{SKUs: []string{"A", "B"}})
	if !errors.Is(err, ErrOutOfStock) {
		t.Fatalf("errors.Is(%v, ErrOutOfStock) = false", err)
	}
	if want := ErrOutOfStock.Error() + ": [A B]"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestParkAndUnpark(t *testing.T) {
	ctx := context.Background()
	for _, from := range []Status{StatusCommitting, StatusCancelling} {
		t.Run("parked_from_"+string(from)+"_and_back", func(t *testing.T) {
			o, s, c := withStatus(t, from, lineA), newSaver(), &clock{}
			if err := o.Park(ctx, "the store broke", s.save, c.now); err != nil {
				t.Fatal(err)
			}
			if o.Status != StatusNeedsAttention || o.ParkedFrom != from || o.Attention != "the store broke" || o.Unfinished() {
				t.Fatalf("parked order = %s from %s (%q), unfinished %v", o.Status, o.ParkedFrom, o.Attention, o.Unfinished())
			}
			if err := o.Unpark(ctx, s.save, c.now); err != nil {
				t.Fatal(err)
			}
			if o.Status != from || o.ParkedFrom != "" || o.Attention != "" || !o.Unfinished() {
				t.Fatalf("unparked order = %s from %q (%q), unfinished %v", o.Status, o.ParkedFrom, o.Attention, o.Unfinished())
			}
			assertSaved(t, s, []Status{StatusNeedsAttention, from})
		})
	}
	t.Run("an_order_at_rest_is_not_parked", func(t *testing.T) {
		for _, st := range []Status{StatusConfirmed, StatusCancelled, StatusShipped, StatusDelivered, StatusRejected} {
			o, s := withStatus(t, st, lineA), newSaver()
			if err := o.Park(ctx, "x", s.save, (&clock{}).now); err != nil || o.Status != st {
				t.Errorf("Park of a %s order: %v, now %s", st, err, o.Status)
			}
			if err := o.Unpark(ctx, s.save, (&clock{}).now); err != nil || o.Status != st {
				t.Errorf("Unpark of a %s order: %v, now %s", st, err, o.Status)
			}
			assertSaved(t, s, nil)
		}
	})
	t.Run("a_failed_save_parks_nothing", func(t *testing.T) {
		o, s := withStatus(t, StatusCommitting, lineA), newSaver()
		s.failAt[StatusNeedsAttention] = errors.New("store down")
		if err := o.Park(ctx, "x", s.save, (&clock{}).now); err == nil {
			t.Fatal("Park with a failing save succeeded")
		}
		if o.Status != StatusCommitting || o.ParkedFrom != "" || o.Attention != "" {
			t.Errorf("after a failed park: %s from %q (%q), want committing as before", o.Status, o.ParkedFrom, o.Attention)
		}
	})
}

func TestShopperStatus(t *testing.T) {
	for _, tc := range []struct {
		status, parkedFrom, want Status
	}{
		{StatusCommitting, "", StatusPending},
		{StatusConfirmed, "", StatusConfirmed},
		{StatusCancelling, "", StatusCancelling},
		{StatusNeedsAttention, StatusCommitting, StatusPending},
		{StatusNeedsAttention, StatusCancelling, StatusCancelling},
	} {
		o := &Order{Status: tc.status, ParkedFrom: tc.parkedFrom}
		if got := o.ShopperStatus(); got != tc.want {
			t.Errorf("%s (parked from %q) shows %s, want %s", tc.status, tc.parkedFrom, got, tc.want)
		}
	}
}
