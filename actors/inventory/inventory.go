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
//
// The ledgers that make commands idempotent (one sale per order, one receipt per
// request id) are kept in full by the store, beside the snapshot, and only in part
// in memory: the sales made in the last LedgerWindow and the most recent receipts.
// So an activation loads a bounded part of a SKU's history however long it has
// sold. What memory does not hold is looked up in the store before the command
// runs (the grain does it: KnowsSale, RecallSale, KnowsReceipt, RecallReceipt),
// and an item drops from memory only what is durable (Compact), so memory and
// store together always know every sale and every receipt.
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

// receiptWindow is how many receipts an item keeps in memory (and in its
// snapshot) once they are durable. Grain-call retries arrive within seconds and
// find theirs there; a receipt repeated later (an operator resending a delivery
// with its Idempotency-Key) is looked up in the store.
const receiptWindow = 64

// LedgerWindow is how long a sale stays in memory after it was made. It is long
// enough that every command of a checkout that runs its course finds its order's
// sale in memory: the saga's commits, their grain-call retries, its own retries
// (at most 30 s apart) and a resumption by a surviving member after a crash
// (within the reservation TTL, 1 minute by default). Only a cancel, or a saga
// stuck longer than this, costs a lookup of one row. And it is short enough that
// an activation loads at most this much of a SKU's sales, not every sale it ever
// made.
const LedgerWindow = 10 * time.Minute

// clockSkew is how far apart members' clocks may be. An order's creation time is
// its member's clock and a sale's time the item's: an order created less than
// this after the ledger's window began may have a sale from before it, and is
// looked up.
const clockSkew = time.Minute

// compactEvery is how often Compact scans the sales in memory for ones to drop.
const compactEvery = time.Minute

// Receipt is a delivery the item remembers, so that a retry of it adds nothing.
// Quantity 0 marks a receipt remembered from before quantities were kept: any
// quantity then counts as a retry.
type Receipt struct {
	RequestID string
	Quantity  int64
}

// Sale is the units sold to one order, and when. Quantity 0 in memory marks an
// order known to hold no sale: returned (until the return is durable) or looked
// up and not found.
type Sale struct {
	Quantity int64
	At       time.Time
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
	// sales is the part of the sales ledger in memory: every sale made at or
	// after salesFrom (all of them while salesFrom is zero), older ones looked up
	// for a command, and orders known to hold none (Quantity 0).
	sales     map[string]Sale
	salesFrom time.Time
	// recentReceipts are the most recent receipts, oldest first: the durable
	// window and every receipt since; recalled are older ones looked up for a
	// command.
	recentReceipts []Receipt
	recalled       map[string]int64
	compactedAt    time.Time
	// unwritten are the changes of the ledgers no write has taken yet.
	unwritten LedgerChange
}

// LedgerChange is what changed in the ledgers kept beside the snapshot: sales
// added (order -> sale), orders whose sale was returned, and receipts taken. They
// are stored one row per order and per receipt, so that a write carries only its
// own changes.
type LedgerChange struct {
	Added    map[string]Sale
	Returned []string
	Receipts []Receipt
	// Born are the orders their sale creates (Sell): order id -> the order's
	// first snapshot, stored in the same transaction as the sale, or not at all.
	// Every id in Born is in Added.
	Born map[string][]byte
}

// Empty reports whether nothing changed.
func (c LedgerChange) Empty() bool {
	return len(c.Added) == 0 && len(c.Returned) == 0 && len(c.Receipts) == 0
}

// TakeChange returns the ledger changes since the last call, for the write that
// starts now.
func (it *Item) TakeChange() LedgerChange {
	c := it.unwritten
	it.unwritten = LedgerChange{}
	return c
}

// KnowsSale reports whether the item knows, without the store, whether orderID
// holds a sale: the order is in memory, or it was created (created, the order's
// own clock; zero if unknown) after every sale made since then is in memory.
// Reserve, Commit and Return take an order they do not know as one holding no
// sale: the caller recalls an order it does not know first (RecallSale).
func (it *Item) KnowsSale(orderID string, created time.Time) bool {
	if _, ok := it.sales[orderID]; ok {
		return true
	}
	return it.salesFrom.IsZero() || (!created.IsZero() && !created.Before(it.salesFrom.Add(clockSkew)))
}

// RecallSale puts what the store holds of orderID's sale in memory (found false:
// none), for a command on an order older than the ledger's window. It changes
// nothing the item already knows.
func (it *Item) RecallSale(orderID string, s Sale, found bool) {
	if _, ok := it.sales[orderID]; ok {
		return
	}
	it.init()
	if !found {
		s = Sale{}
	}
	it.sales[orderID] = s
}

// KnowsReceipt reports whether the item knows, without the store, whether
// requestID was received: it is among the receipts in memory. Receive takes a
// request id it does not know as a new delivery: the caller looks one up first
// (RecallReceipt).
func (it *Item) KnowsReceipt(requestID string) bool {
	if _, ok := it.recalled[requestID]; ok {
		return true
	}
	for _, r := range it.recentReceipts {
		if r.RequestID == requestID {
			return true
		}
	}
	return false
}

// RecallReceipt puts a receipt the store holds in memory, for a Receive of its
// request id again.
func (it *Item) RecallReceipt(r Receipt) {
	if it.recalled == nil {
		it.recalled = make(map[string]int64)
	}
	it.recalled[r.RequestID] = r.Quantity
}

// RewriteReceipts makes the next write carry every receipt in memory, for an item
// loaded from a snapshot of a release that kept receipts only in the snapshot:
// then the store holds them all (the write leaves one already there as it is).
func (it *Item) RewriteReceipts() {
	it.unwritten.Receipts = append(it.unwritten.Receipts, it.recentReceipts...)
}

// Compact drops from memory what the store holds and no command needs soon: the
// sales made before now-LedgerWindow, the orders known to hold none, the
// receipts before the last receiptWindow, the receipts recalled. It keeps every
// change no write has taken (they are not in the store yet). The caller calls it
// only when no write is in flight, right after one committed: then everything
// but the unwritten changes is durable, and whatever memory drops the store
// holds, so a lookup finds it.
func (it *Item) Compact(now time.Time) {
	keep := max(receiptWindow, len(it.unwritten.Receipts))
	if n := len(it.recentReceipts); n > keep {
		it.recentReceipts = append([]Receipt(nil), it.recentReceipts[n-keep:]...)
	}
	it.recalled = nil
	if now.Before(it.compactedAt.Add(compactEvery)) {
		return
	}
	it.compactedAt = now
	cutoff := now.Add(-LedgerWindow)
	if !cutoff.After(it.salesFrom) {
		return
	}
	returned := make(map[string]bool, len(it.unwritten.Returned))
	for _, id := range it.unwritten.Returned {
		returned[id] = true
	}
	for id, s := range it.sales {
		_, added := it.unwritten.Added[id]
		if (s.Quantity == 0 || s.At.Before(cutoff)) && !added && !returned[id] {
			delete(it.sales, id)
		}
	}
	it.salesFrom = cutoff
}

// Level is a read-only view of an item's counters.
type Level struct {
	Available, Reserved, Sold, Received int64
}

// Snapshot is everything an Item holds, for persistence.
type Snapshot struct {
	Level
	Reservations []Reservation
	// Sales are the part of the sales ledger in memory: every sale made at or
	// after SalesFrom, or the whole ledger while SalesFrom is zero.
	Sales          map[string]Sale
	SalesFrom      time.Time
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
		sales:          make(map[string]Sale, len(s.Sales)),
		salesFrom:      s.SalesFrom,
		recentReceipts: append([]Receipt(nil), s.RecentReceipts...),
	}
	for _, r := range s.Reservations {
		it.reservations[r.OrderID] = r
	}
	for id, sale := range s.Sales {
		if sale.Quantity <= 0 {
			// In the store a sale holds units; only memory marks an order
			// without one.
			return nil, fmt.Errorf("%w: stored sale of %d to %s", ErrConservation, sale.Quantity, id)
		}
		it.sales[id] = sale
	}
	return it, it.Check()
}

// Snapshot returns a copy of the item's state; reservations sorted by order id.
func (it *Item) Snapshot() Snapshot {
	s := it.Record()
	s.Sales = make(map[string]Sale, len(it.sales))
	for id, sale := range it.sales {
		if sale.Quantity > 0 {
			s.Sales[id] = sale
		}
	}
	s.SalesFrom = it.salesFrom
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
	if sold := it.sales[orderID].Quantity; sold > 0 {
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

// Commit turns orderID's reservation into a sale made at now. Committing an
// order that was already committed changes nothing; committing without a
// reservation fails with ErrReservationMissing (it expired or was released).
func (it *Item) Commit(orderID string, now time.Time) (changed bool, err error) {
	if it.sales[orderID].Quantity > 0 {
		return false, nil
	}
	r, ok := it.reservations[orderID]
	if !ok {
		return false, ErrReservationMissing
	}
	delete(it.reservations, orderID)
	sale := Sale{Quantity: r.Quantity, At: now}
	it.sales[orderID] = sale
	if it.unwritten.Added == nil {
		it.unwritten.Added = make(map[string]Sale)
	}
	it.unwritten.Added[orderID] = sale
	it.reserved -= r.Quantity
	it.sold += r.Quantity
	return true, it.checkLevel()
}

// Sell sells qty units to orderID at now, without a reservation, and takes
// order, the order's first snapshot, to be stored with the sale (see
// LedgerChange.Born): the order is born by the write that sells its units. An
// order that holds a sale, or a reservation (a saga's), is sold nothing:
// before reports it, and the order's own grain answers for it. An order not in
// memory is taken as holding no sale: the caller recalls it first (KnowsSale,
// RecallSale) unless it knows the order is new.
func (it *Item) Sell(orderID string, qty int64, now time.Time, order []byte) (changed, before bool, err error) {
	if qty <= 0 {
		return false, false, ErrInvalidQuantity
	}
	if it.sales[orderID].Quantity > 0 {
		return false, true, nil
	}
	if _, ok := it.reservations[orderID]; ok {
		return false, true, nil
	}
	if qty > it.available {
		return false, false, ErrOutOfStock
	}
	it.init()
	sale := Sale{Quantity: qty, At: now}
	it.sales[orderID] = sale
	if it.unwritten.Added == nil {
		it.unwritten.Added = make(map[string]Sale)
	}
	it.unwritten.Added[orderID] = sale
	if it.unwritten.Born == nil {
		it.unwritten.Born = make(map[string][]byte)
	}
	it.unwritten.Born[orderID] = order
	it.available -= qty
	it.sold += qty
	return true, false, it.checkLevel()
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
	q := it.sales[orderID].Quantity
	if q == 0 {
		return false, nil
	}
	// Kept as an order known to hold no sale until Compact: until its row's
	// delete is durable, a lookup in the store would still find the sale.
	it.sales[orderID] = Sale{}
	if _, unwritten := it.unwritten.Added[orderID]; unwritten {
		delete(it.unwritten.Added, orderID) // never stored: nothing to delete
		delete(it.unwritten.Born, orderID)
	} else {
		it.unwritten.Returned = append(it.unwritten.Returned, orderID)
	}
	it.sold -= q
	it.available += q
	return true, it.checkLevel()
}

// Receive adds qty units to the shelf. A request id received before with the same
// quantity is a retry and changes nothing; with another quantity it is a different
// delivery under a reused id, refused with ErrReceiptChanged rather than dropped.
// A request id not in memory is a new delivery: the caller recalls an older one
// from the store first (KnowsReceipt, RecallReceipt).
func (it *Item) Receive(requestID string, qty int64) (changed bool, err error) {
	if qty <= 0 {
		return false, ErrInvalidQuantity
	}
	same := func(had int64) (bool, error) {
		if had != 0 && had != qty {
			return false, ErrReceiptChanged
		}
		return false, nil
	}
	if had, ok := it.recalled[requestID]; ok {
		return same(had)
	}
	for _, r := range it.recentReceipts {
		if r.RequestID == requestID {
			return same(r.Quantity)
		}
	}
	it.init()
	it.received += qty
	it.available += qty
	r := Receipt{RequestID: requestID, Quantity: qty}
	it.recentReceipts = append(it.recentReceipts, r)
	it.unwritten.Receipts = append(it.unwritten.Receipts, r)
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
	for id, s := range it.sales {
		if s.Quantity < 0 {
			return fmt.Errorf("%w: sale of %d to %s", ErrConservation, s.Quantity, id)
		}
		sold += s.Quantity
	}
	// With the whole ledger in memory its sales are every unit sold; with a part
	// of it, at most that.
	whole := it.salesFrom.IsZero()
	if reserved != it.reserved || (whole && sold != it.sold) || sold > it.sold {
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
		it.sales = make(map[string]Sale)
	}
}
