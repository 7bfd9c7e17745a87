// Package order is one order and the checkout saga that takes its stock: reserve
// every line (all or nothing), persist, commit every reservation, persist. It is pure
// domain code: stock is reached through the Stock port and durability through a save
// function, both supplied by grain.go.
//
// Lifecycle:
//
//	pending -> committing -> confirmed -> shipped -> delivered
//	pending -> rejected (a line could not be reserved; nothing is kept)
//	committing -> rejected (a campaign refused its discount: the price changed, or
//	              the order's account is over the campaign's limit per customer)
//	confirmed -> cancelling -> cancelled (stock returned)
//	committing | cancelling -> needs_attention (a step failed for a reason no retry
//	cures: parked for ops, who may put it back where it stopped)
//
// "committing" and "cancelling" are persisted before the stock calls they announce,
// so an order that dies in the middle resumes from its snapshot and finishes the job.
package order

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is where an order is in its lifecycle.
type Status string

// The statuses of an order.
const (
	StatusPending    Status = "pending"
	StatusCommitting Status = "committing"
	StatusConfirmed  Status = "confirmed"
	StatusRejected   Status = "rejected"
	StatusCancelling Status = "cancelling"
	StatusCancelled  Status = "cancelled"
	StatusShipped    Status = "shipped"
	StatusDelivered  Status = "delivered"
	// StatusNeedsAttention is a saga parked after a step failed for a reason no
	// retry cures (a bug, a broken invariant): it stops retrying, and ops see it.
	StatusNeedsAttention Status = "needs_attention"
)

// Sentinel errors of the order domain.
var (
	ErrOutOfStock          = errors.New("order: a line cannot be covered by available stock")
	ErrReservationMissing  = errors.New("order: reservation missing at commit")
	ErrEmpty               = errors.New("order: no lines")
	ErrIdempotencyMismatch = errors.New("order: idempotency key reused with a different request")
	ErrTransition          = errors.New("order: not allowed in the current status")
	ErrInvalidLine         = errors.New("order: invalid line")
	ErrNotFound            = errors.New("order: not found")
	// ErrSuperseded is wrapped by a SaveFunc that lost to another activation of
	// the same order (fencing): what the order holds in stock, under its id, is
	// that activation's business now.
	ErrSuperseded = errors.New("order: another activation moved the order on")
)

// Stock is what the saga needs from inventory. Every call is idempotent per
// (sku, orderID). Reserve fails with ErrOutOfStock when the units are not there;
// Commit fails with ErrReservationMissing when the reservation expired.
type Stock interface {
	Reserve(ctx context.Context, sku, orderID string, qty int64) error
	Commit(ctx context.Context, sku, orderID string) error
	Release(ctx context.Context, sku, orderID string) error
	Return(ctx context.Context, sku, orderID string) error
}

// ErrPriceChanged is a campaign's refusal of an order's discount: it ended, was
// paused, or has too few discounted units left.
var ErrPriceChanged = errors.New("order: a campaign no longer gives the discount the order was priced with")

// ErrLimitExceeded is wrapped by a *LimitExceededError: the order would buy more
// units of a campaign at its discount than the campaign allows one account.
var ErrLimitExceeded = errors.New("order: over a campaign's limit of units per customer")

// LimitExceededError refuses an order over a campaign's limit per customer:
// Remaining is how many units the account may still buy at PromoID's discount.
type LimitExceededError struct {
	PromoID   string
	Remaining int64
}

func (e *LimitExceededError) Error() string {
	return fmt.Sprintf("%v: %s, %d units left to this account", ErrLimitExceeded, e.PromoID, e.Remaining)
}

// Unwrap makes errors.Is(err, ErrLimitExceeded) hold.
func (e *LimitExceededError) Unwrap() error { return ErrLimitExceeded }

// Promos is what the saga needs from campaigns. Every call is idempotent per
// (promo, orderID). Grant takes units at a campaign's discount for the order of
// accountID, all or none, and fails with ErrPriceChanged when the campaign
// refuses, or with a *LimitExceededError when the account would go over the
// campaign's limit per customer; Return gives them back.
type Promos interface {
	Grant(ctx context.Context, promoID, orderID, accountID string, units int64) error
	Return(ctx context.Context, promoID, orderID string) error
}

// Ports are what the saga calls: inventory, and campaigns for discounted lines.
type Ports struct {
	Stock  Stock
	Promos Promos
}

// SaveFunc makes the order durable; the saga calls it before each step that must
// survive a crash. It fails with an error wrapping ErrSuperseded when another
// activation moved the order on (fencing).
type SaveFunc func(ctx context.Context, o *Order) error

// Line is one SKU of an order, at the price it was placed at: the list price of a
// unit, and the line's discount from the campaign PromoID (none when empty).
type Line struct {
	SKU            string
	PhoneID        string
	Name           string
	Quantity       int64
	UnitPriceCents int64
	DiscountCents  int64
	PromoID        string
}

// Subtotal is the line at list price.
func (l Line) Subtotal() int64 { return l.Quantity * l.UnitPriceCents }

// Address is where an order ships.
type Address struct {
	Name, Line1, Line2, City, PostalCode, Country string
}

// Order is one order. Its fields are exported for the grain's converters; change
// them only through the methods.
type Order struct {
	ID           string
	AccountID    string
	RequestHash  string
	Status       Status
	Lines        []Line
	Address      Address
	Currency     string
	TotalCents   int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
	RejectedSKUs []string
	// RejectedPromos are the campaigns that refused the order's discount.
	RejectedPromos []string
	// OverLimit is the campaign whose limit per customer refused the order (nil:
	// none).
	OverLimit *LimitExceededError
	// CartRevision is the revision of the cart the lines came from (0: none). A
	// cart whose emptying was lost in a crash finds the order placed from its
	// revision, confirmed, and empties itself again (actors/cart).
	CartRevision uint64
	// ParkedFrom is the status a parked saga stopped in (needs_attention), and
	// Attention the failure that parked it.
	ParkedFrom Status
	Attention  string
}

// DiscountCents is the sum of the lines' discounts.
func (o *Order) DiscountCents() int64 {
	var d int64
	for _, l := range o.Lines {
		d += l.DiscountCents
	}
	return d
}

// PriceChangedError says an order's price is not the one it was placed at: Promos
// lists the campaigns that refused its discount, or TotalCents is the total that
// differs from the one the shopper expected.
type PriceChangedError struct {
	Promos     []string
	TotalCents int64
}

func (e *PriceChangedError) Error() string {
	if len(e.Promos) == 0 {
		return fmt.Sprintf("order: the total is %d cents, not the one expected", e.TotalCents)
	}
	return fmt.Sprintf("%v: %v", ErrPriceChanged, e.Promos)
}

// Unwrap makes errors.Is(err, ErrPriceChanged) hold.
func (e *PriceChangedError) Unwrap() error { return ErrPriceChanged }

// OutOfStockError lists the SKUs that could not be reserved.
type OutOfStockError struct{ SKUs []string }

func (e *OutOfStockError) Error() string { return fmt.Sprintf("%v: %v", ErrOutOfStock, e.SKUs) }

// Unwrap makes errors.Is(err, ErrOutOfStock) hold.
func (e *OutOfStockError) Unwrap() error { return ErrOutOfStock }

// ID derives an order id from the account and the client's idempotency key, so the
// same key always lands on the same order grain.
func ID(accountID, idempotencyKey string) string {
	sum := sha256.Sum256([]byte(accountID + "\x00" + idempotencyKey))
	return "ord_" + hex.EncodeToString(sum[:12])
}

// Exists reports whether the order was ever placed (a fresh grain has no account).
func (o *Order) Exists() bool { return o.AccountID != "" }

// Place starts a new order, or recognises a replay of the same request. It returns
// replay=true when the order already exists for this request hash; the caller then
// just reports the order. A rejected order may be placed again (stock may be back).
//
// expectedTotal, when set, is the total the shopper was shown: a new order at
// another total is refused with a *PriceChangedError and nothing changes.
// cartRevision is the revision of the cart the lines come from (0: none).
func (o *Order) Place(id, accountID, requestHash, currency string, lines []Line, addr Address, expectedTotal *int64,
	cartRevision uint64, now time.Time) (replay bool, err error) {
	if o.Exists() && o.Status != StatusRejected {
		if o.AccountID != accountID || o.RequestHash != requestHash {
			return false, ErrIdempotencyMismatch
		}
		return true, nil
	}
	if o.Exists() && (o.AccountID != accountID || o.RequestHash != requestHash) {
		return false, ErrIdempotencyMismatch
	}
	if len(lines) == 0 {
		return false, ErrEmpty
	}
	var total int64
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		if l.Quantity <= 0 || l.UnitPriceCents < 0 || l.DiscountCents < 0 || l.DiscountCents > l.Subtotal() ||
			(l.PromoID == "" && l.DiscountCents != 0) {
			return false, fmt.Errorf("%w: bad line %+v", ErrInvalidLine, l)
		}
		// Stock calls are keyed by (sku, order): a second line of the same SKU
		// would look like a retry of the first and take no stock.
		if seen[l.SKU] {
			return false, fmt.Errorf("%w: sku %s on two lines", ErrInvalidLine, l.SKU)
		}
		seen[l.SKU] = true
		total += l.Subtotal() - l.DiscountCents
	}
	if expectedTotal != nil && *expectedTotal != total {
		return false, &PriceChangedError{TotalCents: total}
	}
	created := o.CreatedAt
	if created.IsZero() {
		created = now
	}
	*o = Order{
		ID: id, AccountID: accountID, RequestHash: requestHash, Status: StatusPending,
		Lines: slices.Clone(lines), Address: addr, Currency: currency, TotalCents: total,
		CreatedAt: created, UpdatedAt: now, CartRevision: cartRevision,
	}
	return false, nil
}

// Advance runs the saga from the order's current status until it rests (confirmed,
// rejected, cancelled) or a step fails with an error worth retrying later. It is safe
// to call again after a crash or an error: every stock call is idempotent.
func (o *Order) Advance(ctx context.Context, ports Ports, save SaveFunc, now func() time.Time) error {
	stock := ports.Stock
	for {
		switch o.Status {
		case StatusPending:
			if err := o.reserveAll(ctx, stock, save, now); err != nil {
				return err
			}
		case StatusCommitting:
			if err := o.commitAll(ctx, ports, save, now); err != nil {
				return err
			}
		case StatusCancelling:
			for _, l := range o.Lines {
				if err := stock.Return(ctx, l.SKU, o.ID); err != nil {
					return err
				}
			}
			if err := o.returnGrants(ctx, ports.Promos); err != nil {
				return err
			}
			if err := o.moveTo(ctx, StatusCancelled, save, now); err != nil {
				return err
			}
		case StatusRejected:
			if o.OverLimit != nil {
				return &LimitExceededError{PromoID: o.OverLimit.PromoID, Remaining: o.OverLimit.Remaining}
			}
			if len(o.RejectedPromos) > 0 {
				return &PriceChangedError{Promos: slices.Clone(o.RejectedPromos)}
			}
			return &OutOfStockError{SKUs: slices.Clone(o.RejectedSKUs)}
		default:
			return nil
		}
	}
}

// releaseBudget bounds the releases of a failed checkout.
const releaseBudget = 2 * time.Second

// reserveAll reserves every line. A pending order is not yet persisted: if this
// process dies now, the reservations expire on their own and nothing is lost.
func (o *Order) reserveAll(ctx context.Context, stock Stock, save SaveFunc, now func() time.Time) error {
	var short []string
	var failure error
	for _, l := range o.Lines {
		err := stock.Reserve(ctx, l.SKU, o.ID, l.Quantity)
		switch {
		case err == nil:
		case errors.Is(err, ErrOutOfStock):
			short = append(short, l.SKU)
		default:
			failure = err
		}
		if failure != nil {
			break
		}
	}
	if failure == nil && len(short) == 0 {
		if err := o.moveTo(ctx, StatusCommitting, save, now); err != nil {
			// The reservations are keyed by the order's id: a superseded saga
			// would release the ones the winning activation is about to commit.
			if !errors.Is(err, ErrSuperseded) {
				o.releaseAll(ctx, stock)
			}
			o.Status = StatusPending
			return err
		}
		return nil
	}
	o.releaseAll(ctx, stock)
	if failure != nil {
		return failure
	}
	o.Status, o.RejectedSKUs, o.UpdatedAt = StatusRejected, short, now()
	return nil
}

// commitAll takes the discounts, then commits every reservation. The discounts
// come first and after "committing" is durable: a grant is not a hold that
// expires, so only an order that will finish its saga, even after a crash, may
// take one, and a refusal then costs only releases (nothing is sold yet). A
// refused discount rejects the order: its price changed. A reservation that
// expired while the order was down is taken again; if the stock is gone by then,
// what was already committed goes back and the order is rejected.
//
// The limit per customer is checked here too, in the grant, for the same
// reasons, and because only there can it be checked at all: the campaign's grain
// counts an account's units in the same step as the grant that adds to them, so
// no two orders of one account, on any members, both find the allowance free.
// An order over the limit is rejected before any unit is sold: the grants it
// took of other campaigns go back, its reservations are released, and the
// rejection is durable before the answer, so nothing stays reserved and the cart
// (emptied only by a confirmed order) keeps its lines. A crash on the way is
// resumed from "committing": the grants are idempotent per order, so the saga
// meets the same refusal again (or, if another order of the account was
// cancelled meanwhile, the allowance it freed, and confirms), and holds a crash
// left behind expire on their own.
func (o *Order) commitAll(ctx context.Context, ports Ports, save SaveFunc, now func() time.Time) error {
	stock := ports.Stock
	refused, overLimit, err := o.grantAll(ctx, ports.Promos)
	if err != nil {
		return err
	}
	if overLimit != nil || len(refused) > 0 {
		if err := o.returnGrants(ctx, ports.Promos); err != nil {
			return err
		}
		o.releaseAll(ctx, stock)
		if overLimit != nil {
			return o.rejectOverLimit(ctx, overLimit, save, now)
		}
		return o.reject(ctx, nil, refused, save, now)
	}
	for _, l := range o.Lines {
		err := stock.Commit(ctx, l.SKU, o.ID)
		if errors.Is(err, ErrReservationMissing) {
			err = stock.Reserve(ctx, l.SKU, o.ID, l.Quantity)
			if err == nil {
				err = stock.Commit(ctx, l.SKU, o.ID)
			}
		}
		if errors.Is(err, ErrOutOfStock) {
			for _, back := range o.Lines {
				if err := stock.Return(ctx, back.SKU, o.ID); err != nil {
					return err
				}
			}
			if err := o.returnGrants(ctx, ports.Promos); err != nil {
				return err
			}
			o.releaseAll(ctx, stock)
			return o.reject(ctx, []string{l.SKU}, nil, save, now)
		}
		if err != nil {
			return err
		}
	}
	return o.moveTo(ctx, StatusConfirmed, save, now)
}

// promoUnits is how many units the order takes from each campaign, by campaign id
// in order.
func (o *Order) promoUnits() (ids []string, units map[string]int64) {
	units = map[string]int64{}
	for _, l := range o.Lines {
		if l.PromoID == "" {
			continue
		}
		if _, ok := units[l.PromoID]; !ok {
			ids = append(ids, l.PromoID)
		}
		units[l.PromoID] += l.Quantity
	}
	slices.Sort(ids)
	return ids, units
}

// grantAll asks every campaign of the order's lines for its units and returns the
// ones that refused the discount, or the first whose limit per customer refused
// the order (the order is refused whatever the others answer: no grant is asked
// after it); any other failure is returned (the saga retries it).
func (o *Order) grantAll(ctx context.Context, promos Promos) (refused []string, overLimit *LimitExceededError, err error) {
	ids, units := o.promoUnits()
	for _, id := range ids {
		err := promos.Grant(ctx, id, o.ID, o.AccountID, units[id])
		switch {
		case err == nil:
		case errors.As(err, &overLimit):
			return nil, overLimit, nil
		case errors.Is(err, ErrPriceChanged):
			refused = append(refused, id)
		default:
			return nil, nil, err
		}
	}
	return refused, nil, nil
}

// returnGrants gives every discount the order may hold back to its campaign.
func (o *Order) returnGrants(ctx context.Context, promos Promos) error {
	ids, _ := o.promoUnits()
	for _, id := range ids {
		if err := promos.Return(ctx, id, o.ID); err != nil {
			return err
		}
	}
	return nil
}

// releaseAll drops every reservation the order may hold. It runs on a deadline of
// its own, releaseBudget, not on what is left of ctx: when a checkout failed because
// its request ran out of time, releases under that deadline would fail too, and the
// units would stay held, unsold, until their reservations expire, in the middle of a
// sale. Failures are left to that expiry.
func (o *Order) releaseAll(ctx context.Context, stock Stock) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseBudget)
	defer cancel()
	for _, l := range o.Lines {
		_ = stock.Release(ctx, l.SKU, o.ID)
	}
}

// reject moves a committing order to rejected for the SKUs or campaigns that
// refused it. A save that fails leaves no trace of the refusal: the order is
// committing again, and its next attempt decides afresh.
func (o *Order) reject(ctx context.Context, skus, promos []string, save SaveFunc, now func() time.Time) error {
	o.RejectedSKUs, o.RejectedPromos = skus, promos
	if err := o.moveTo(ctx, StatusRejected, save, now); err != nil {
		o.RejectedSKUs, o.RejectedPromos = nil, nil
		return err
	}
	return nil
}

// rejectOverLimit moves a committing order to rejected for a campaign's limit per
// customer. A save that fails leaves no trace of the refusal, as in reject.
func (o *Order) rejectOverLimit(ctx context.Context, limit *LimitExceededError, save SaveFunc, now func() time.Time) error {
	o.OverLimit = &LimitExceededError{PromoID: limit.PromoID, Remaining: limit.Remaining}
	if err := o.moveTo(ctx, StatusRejected, save, now); err != nil {
		o.OverLimit = nil
		return err
	}
	return nil
}

func (o *Order) moveTo(ctx context.Context, s Status, save SaveFunc, now func() time.Time) error {
	prev, prevUpdated := o.Status, o.UpdatedAt
	o.Status, o.UpdatedAt = s, now()
	if err := save(ctx, o); err != nil {
		o.Status, o.UpdatedAt = prev, prevUpdated
		return err
	}
	return nil
}

// Cancel starts cancelling a confirmed order; Advance then returns the stock.
// Cancelling an order already cancelled (or being cancelled) is not an error.
func (o *Order) Cancel(ctx context.Context, save SaveFunc, now func() time.Time) error {
	switch o.Status {
	case StatusConfirmed:
		return o.moveTo(ctx, StatusCancelling, save, now)
	case StatusCancelling, StatusCancelled:
		return nil
	default:
		return fmt.Errorf("%w: cannot cancel a %s order", ErrTransition, o.Status)
	}
}

// Ship marks a confirmed order shipped; shipping it again is not an error.
func (o *Order) Ship(ctx context.Context, save SaveFunc, now func() time.Time) error {
	return o.step(ctx, StatusConfirmed, StatusShipped, save, now)
}

// Deliver marks a shipped order delivered; delivering it again is not an error.
func (o *Order) Deliver(ctx context.Context, save SaveFunc, now func() time.Time) error {
	return o.step(ctx, StatusShipped, StatusDelivered, save, now)
}

func (o *Order) step(ctx context.Context, from, to Status, save SaveFunc, now func() time.Time) error {
	switch o.Status {
	case to:
		return nil
	case from:
		return o.moveTo(ctx, to, save, now)
	default:
		return fmt.Errorf("%w: cannot move a %s order to %s", ErrTransition, o.Status, to)
	}
}

// Park stops the saga of an unfinished order for ops to look at: it moves to
// needs_attention, remembering the status it stopped in and why. Nothing it holds
// is given back: a committing order's reservations expire, and whatever it sold or
// granted stays, as the step that failed left it, until ops decide.
func (o *Order) Park(ctx context.Context, reason string, save SaveFunc, now func() time.Time) error {
	if !o.Unfinished() {
		return nil
	}
	o.ParkedFrom, o.Attention = o.Status, reason
	if err := o.moveTo(ctx, StatusNeedsAttention, save, now); err != nil {
		o.ParkedFrom, o.Attention = "", ""
		return err
	}
	return nil
}

// Unpark puts a parked order back in the status its saga stopped in, for Advance
// to run it again; any other order is left as it is.
func (o *Order) Unpark(ctx context.Context, save SaveFunc, now func() time.Time) error {
	if o.Status != StatusNeedsAttention {
		return nil
	}
	from, reason := o.ParkedFrom, o.Attention
	o.ParkedFrom, o.Attention = "", ""
	if err := o.moveTo(ctx, from, save, now); err != nil {
		o.ParkedFrom, o.Attention = from, reason
		return err
	}
	return nil
}

// ShopperStatus is the status its buyer sees: the saga's inner steps are pending,
// and a parked saga shows where it stopped.
func (o *Order) ShopperStatus() Status {
	s := o.Status
	if s == StatusNeedsAttention {
		s = o.ParkedFrom
	}
	if s == StatusCommitting {
		return StatusPending
	}
	return s
}

// Unfinished reports whether the saga still has work to do (after a crash).
func (o *Order) Unfinished() bool {
	return o.Status == StatusCommitting || o.Status == StatusCancelling
}
