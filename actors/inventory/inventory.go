// Package inventory is the stock of one SKU: how many units were received, how many
// are available, reserved for orders in checkout, and sold. It is pure domain code;
// grain.go adapts it to a protoactor grain.
//
// Every command keeps the conservation invariant
//
//	available + reserved + sold = received, none negative
//
// and every command is idempotent for its key (the order id for reservations, commits
// and returns; the request id for receipts), because grain calls may be delivered twice.
package inventory

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Sentinel errors of the inventory domain.
var (
	ErrOutOfStock         = errors.New("inventory: not enough available stock")
	ErrInvalidQuantity    = errors.New("inventory: quantity must be positive")
	ErrReservationMissing = errors.New("inventory: no reservation for this order (expired or released)")
	ErrQuantityChanged    = errors.New("inventory: order already holds a different quantity")
	ErrReceiptChanged     = errors.New("inventory: receipt request id already used with a different quantity")
	ErrConservation       = errors.New("inventory: conservation invariant broken")
)

// receiptWindow is how many receipt request ids an item remembers. Grain-call
// retries arrive within seconds, so a short window is enough to make them harmless.
const receiptWindow = 64

// Receipt is a delivery the item remembers, so that a retry of it adds nothing.
// Quantity 0 marks a receipt remembered from before quantities were kept: any
// quantity then counts as a retry.
type Receipt struct {
	RequestID string
	Quantity  int64
}

// Reservation is a hold on units for one order until ExpiresAt.
type Reservation struct {
	OrderID   string
	Quantity  int64
	ExpiresAt time.Time
}

// Item is the stock of one SKU. The zero value is an item that never received anything.
type Item struct {
	received, available, reserved, sold int64
	reservations                        map[string]Reservation
	sales                               map[string]int64
	recentReceipts                      []Receipt
	// unwritten are the changes of the sales ledger no write has taken yet.
	unwritten SalesChange
}

// SalesChange is what changed in the sales ledger: sales added (order -> units)
// and orders whose sale was returned. The ledger is stored beside the snapshot, one
// row per order, so that a write carries only its own changes.
type SalesChange struct {
	Added    map[string]int64
	Returned []string
}

// Empty reports whether nothing changed.
func (c SalesChange) Empty() bool { return len(c.Added) == 0 && len(c.Returned) == 0 }

// TakeSalesChange returns the ledger changes since the last call, for the write
// that starts now.
func (it *Item) TakeSalesChange() SalesChange {
	c := it.unwritten
	it.unwritten = SalesChange{}
	return c
}

// Level is a read-only view of an item's counters.
type Level struct {
	Available, Reserved, Sold, Received int64
}

// Snapshot is everything an Item holds, for persistence.
type Snapshot struct {
	Level
	Reservations   []Reservation
	Sales          map[string]int64
	RecentReceipts []Receipt
}

// FromSnapshot rebuilds an item and checks its invariant.
func FromSnapshot(s Snapshot) (*Item, error) {
	it := &Item{
		received:       s.Received,
		available:      s.Available,
		reserved:       s.Reserved,
		sold:           s.Sold,
		reservations:   make(map[string]Reservation, len(s.Reservations)),
		sales:          make(map[string]int64, len(s.Sales)),
		recentReceipts: append([]Receipt(nil), s.RecentReceipts...),
	}
	for _, r := range s.Reservations {
		it.reservations[r.OrderID] = r
	}
	for id, q := range s.Sales {
		it.sales[id] = q
	}
	return it, it.Check()
}

// Snapshot returns a copy of the item's state; reservations sorted by order id.
func (it *Item) Snapshot() Snapshot {
	s := it.Record()
	s.Sales = make(map[string]int64, len(it.sales))
	for id, q := range it.sales {
		s.Sales[id] = q
	}
	return s
}

// Record is the Snapshot without the sales ledger: what the snapshot row holds,
// the ledger being stored beside it a row per order (see SalesChange).
func (it *Item) Record() Snapshot {
	s := Snapshot{
		Level:          it.Level(),
		Reservations:   make([]Reservation, 0, len(it.reservations)),
		RecentReceipts: append([]Receipt(nil), it.recentReceipts...),
	}
	for _, r := range it.reservations {
		s.Reservations = append(s.Reservations, r)
	}
	sort.Slice(s.Reservations, func(i, j int) bool { return s.Reservations[i].OrderID < s.Reservations[j].OrderID })
	return s
}

// Level returns the counters.
func (it *Item) Level() Level {
	return Level{Available: it.available, Reserved: it.reserved, Sold: it.sold, Received: it.received}
}

// Reserve holds qty units for orderID until now+ttl. Reserving again for the same
// order with the same quantity changes nothing (and reports success), as does
// reserving for an order whose reservation was already committed.
func (it *Item) Reserve(orderID string, qty int64, now time.Time, ttl time.Duration) (changed bool, err error) {
	if qty <= 0 {
		return false, ErrInvalidQuantity
	}
	if sold, ok := it.sales[orderID]; ok {
		if sold != qty {
			return false, ErrQuantityChanged
		}
		return false, nil
	}
	if r, ok := it.reservations[orderID]; ok {
		if r.Quantity != qty {
			return false, ErrQuantityChanged
		}
		return false, nil
	}
	if qty > it.available {
		return false, ErrOutOfStock
	}
	it.init()
	it.reservations[orderID] = Reservation{OrderID: orderID, Quantity: qty, ExpiresAt: now.Add(ttl)}
	it.available -= qty
	it.reserved += qty
	return true, it.checkLevel()
}

// Commit turns orderID's reservation into a sale. Committing an order that was
// already committed changes nothing; committing without a reservation fails with
// ErrReservationMissing (it expired or was released).
func (it *Item) Commit(orderID string) (changed bool, err error) {
	if _, ok := it.sales[orderID]; ok {
		return false, nil
	}
	r, ok := it.reservations[orderID]
	if !ok {
		return false, ErrReservationMissing
	}
	delete(it.reservations, orderID)
	it.sales[orderID] = r.Quantity
	if it.unwritten.Added == nil {
		it.unwritten.Added = make(map[string]int64)
	}
	it.unwritten.Added[orderID] = r.Quantity
	it.reserved -= r.Quantity
	it.sold += r.Quantity
	return true, it.checkLevel()
}

// Release drops orderID's reservation; releasing nothing is not an error.
func (it *Item) Release(orderID string) (changed bool, err error) {
	r, ok := it.reservations[orderID]
	if !ok {
		return false, nil
	}
	delete(it.reservations, orderID)
	it.reserved -= r.Quantity
	it.available += r.Quantity
	return true, it.checkLevel()
}

// Return puts the units sold to orderID back to available (the order was cancelled).
// Returning an order that holds no sale is not an error: it was already returned.
func (it *Item) Return(orderID string) (changed bool, err error) {
	q, ok := it.sales[orderID]
	if !ok {
		return false, nil
	}
	delete(it.sales, orderID)
	if _, unwritten := it.unwritten.Added[orderID]; unwritten {
		delete(it.unwritten.Added, orderID) // never stored: nothing to delete
	} else {
		it.unwritten.Returned = append(it.unwritten.Returned, orderID)
	}
	it.sold -= q
	it.available += q
	return true, it.checkLevel()
}

// Receive adds qty units to the shelf. A request id seen recently with the same
// quantity is a retry and changes nothing; with another quantity it is a different
// delivery under a reused id, refused with ErrReceiptChanged rather than dropped.
func (it *Item) Receive(requestID string, qty int64) (changed bool, err error) {
	if qty <= 0 {
		return false, ErrInvalidQuantity
	}
	for _, r := range it.recentReceipts {
		if r.RequestID == requestID {
			if r.Quantity != 0 && r.Quantity != qty {
				return false, ErrReceiptChanged
			}
			return false, nil
		}
	}
	it.init()
	it.received += qty
	it.available += qty
	it.recentReceipts = append(it.recentReceipts, Receipt{RequestID: requestID, Quantity: qty})
	if n := len(it.recentReceipts); n > receiptWindow {
		it.recentReceipts = append([]Receipt(nil), it.recentReceipts[n-receiptWindow:]...)
	}
	return true, it.checkLevel()
}

// Expire releases every reservation whose time is up and returns how many it released.
func (it *Item) Expire(now time.Time) (released int) {
	for id, r := range it.reservations {
		if !now.Before(r.ExpiresAt) {
			delete(it.reservations, id)
			it.reserved -= r.Quantity
			it.available += r.Quantity
			released++
		}
	}
	return released
}

// NextExpiry returns when the earliest reservation expires, and false when none is held.
func (it *Item) NextExpiry() (time.Time, bool) {
	var next time.Time
	for _, r := range it.reservations {
		if next.IsZero() || r.ExpiresAt.Before(next) {
			next = r.ExpiresAt
		}
	}
	return next, !next.IsZero()
}

// Check verifies the conservation invariant and that the counters agree with the
// reservations and sales they summarise.
func (it *Item) Check() error {
	if err := it.checkLevel(); err != nil {
		return err
	}
	var reserved, sold int64
	for _, r := range it.reservations {
		if r.Quantity <= 0 {
			return fmt.Errorf("%w: reservation of %d for %s", ErrConservation, r.Quantity, r.OrderID)
		}
		reserved += r.Quantity
	}
	for id, q := range it.sales {
		if q <= 0 {
			return fmt.Errorf("%w: sale of %d to %s", ErrConservation, q, id)
		}
		sold += q
	}
	if reserved != it.reserved || sold != it.sold {
		return fmt.Errorf("%w: reserved %d/%d, sold %d/%d", ErrConservation, reserved, it.reserved, sold, it.sold)
	}
	return nil
}

// checkLevel verifies the conservation invariant on the counters alone, after every
// command. Check, which also sums every reservation and sale, runs when an item is
// rebuilt from its snapshot: after every command it cost a hot SKU time in
// proportion to the orders it ever sold (a tenth of the shop's CPU in a flash sale).
func (it *Item) checkLevel() error {
	if it.available < 0 || it.reserved < 0 || it.sold < 0 || it.received < 0 {
		return fmt.Errorf("%w: negative counter %+v", ErrConservation, it.Level())
	}
	if it.available+it.reserved+it.sold != it.received {
		return fmt.Errorf("%w: %+v", ErrConservation, it.Level())
	}
	return nil
}

func (it *Item) init() {
	if it.reservations == nil {
		it.reservations = make(map[string]Reservation)
	}
	if it.sales == nil {
		it.sales = make(map[string]int64)
	}
}
