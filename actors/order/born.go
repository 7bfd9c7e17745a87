package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/snapshot"
	"phoneshop/grain/call"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// An order born in its sale is a checkout of one SKU without a campaign's
// discount: the inventory grain of that SKU, the single writer of its stock,
// sells the units and stores the order, confirmed, in the same transaction (its
// group-committed write, shared with the other sales of the SKU). One durable
// round, and no order grain: the order's grain loads it from its snapshot when
// it is first asked (a cancel), as it loads any order.
//
// The crash argument is the transaction's: the sale and the order are durable
// together or not at all. Before the commit nothing is written, the shopper has
// no answer, and a retry under the same Idempotency-Key starts afresh; after
// it, a retry finds the order (PlaceBySale looks first) and its grain answers
// it as a replay; the cart empties itself from the order's cart revision if its
// own write is lost (actors/cart), as after any checkout. An order that cannot be
// sold is not written at all: out of stock is the answer, and nothing is kept.
//
// Orders of several SKUs, or with a discount (a campaign's grant is a durable
// write of the campaign's grain), go through the saga (order.go).

// Seller is where an order is born: Sell sells qty units of sku to orderID and
// stores state, the order's first snapshot, with the sale. soldBefore reports
// an order that held a sale (or a reservation) already: nothing was sold or
// stored, and the order's grain answers for it.
type Seller interface {
	Sell(ctx context.Context, sku, orderID string, qty int64, state []byte) (soldBefore bool, err error)
}

// Placed reads whether an order exists in the store (placed before, whatever
// became of it).
type Placed interface {
	LoadOrder(ctx context.Context, id string) (snapshot.Snapshot, error)
}

// BornInSale reports whether req may be placed as an order born in its sale: one
// line, without a campaign's discount.
func BornInSale(req *orderpb.PlaceRequest) bool {
	return len(req.Lines) == 1 && req.Lines[0].PromoId == ""
}

// ErrPlacedBefore says the order exists already (or its SKU holds a sale or a
// reservation for it): its grain, not PlaceBySale, answers for it.
var ErrPlacedBefore = errors.New("order: placed before; its grain answers")

// PlaceBySale places req, an order BornInSale, as the order id born in its sale,
// and returns it confirmed. It fails with ErrPlacedBefore, changing nothing,
// when the store holds the order already or the sale finds it placed: the
// caller then asks the order's grain. An order that cannot be placed (out of
// stock, a total other than the one expected) fails as the saga fails it, with
// nothing written. Any other failure leaves the outcome unknown until a retry:
// the sale's transaction may have committed.
func PlaceBySale(ctx context.Context, store Placed, seller Seller, id string, req *orderpb.PlaceRequest, now time.Time) (*orderpb.OrderView, error) {
	snap, err := store.LoadOrder(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("order %s: look up: %w", id, err)
	}
	if snap.Version > 0 {
		return nil, ErrPlacedBefore
	}
	var expected *int64
	if req.HasExpectedTotal {
		expected = &req.ExpectedTotalCents
	}
	o := &Order{}
	lines := linesFromProto(req.Lines)
	if _, err := o.Place(id, req.AccountId, req.RequestHash, req.Currency, lines, addressFromProto(req.ShippingAddress),
		expected, req.CartRevision, now); err != nil {
		return nil, err
	}
	o.Status = StatusConfirmed
	state, err := Encode(o)
	if err != nil {
		return nil, err
	}
	before, err := seller.Sell(ctx, lines[0].SKU, id, lines[0].Quantity, state)
	switch {
	case errors.Is(err, ErrOutOfStock):
		return nil, &OutOfStockError{SKUs: []string{lines[0].SKU}}
	case err != nil:
		return nil, err
	case before:
		return nil, ErrPlacedBefore
	}
	return &orderpb.OrderView{Order: toProto(o)}, nil
}

// GrainSeller is the Seller of the inventory grains of c, called under calls.
func GrainSeller(c *cluster.Cluster, calls call.Policy) Seller {
	return grainSeller{cluster: c, calls: calls}
}

type grainSeller struct {
	cluster *cluster.Cluster
	calls   call.Policy
}

func (s grainSeller) Sell(ctx context.Context, sku, orderID string, qty int64, state []byte) (bool, error) {
	client := inventorypb.GetInventoryGrainClient(s.cluster, sku)
	res, err := call.Do(ctx, s.calls, "inventory", "Sell", func(opts ...cluster.GrainCallOption) (*inventorypb.SellResult, error) {
		return client.Sell(&inventorypb.SellRequest{OrderId: orderID, Quantity: qty, DeadlineUnixMs: call.Deadline(ctx), OrderState: state}, opts...)
	})
	switch {
	case err == nil:
		return res.SoldBefore, nil
	case reasonpb.IsOutOfStock(err):
		return false, fmt.Errorf("%w: %s", ErrOutOfStock, sku)
	default:
		return false, fmt.Errorf("inventory %s Sell: %w", sku, err)
	}
}
