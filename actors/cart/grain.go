package cart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"phoneshop/actors/grainerr"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/actors/snapshot"
	"phoneshop/grain/call"
	"phoneshop/grain/grainctx"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of cart grains.
const KindName = "Cart"

// Store persists cart snapshots, fenced like every grain snapshot: SaveCart succeeds
// only when the stored version is expectedVersion, else snapshot.ErrStale.
//
// CartCheckedOut returns the account's confirmed order (confirmed, or moved on
// from there) placed from the highest cart revision, if any.
//
// LoadOrder reads an order's snapshot: a checkout of one SKU looks its order up
// before placing it born in its sale (order.PlaceBySale).
type Store interface {
	LoadCart(ctx context.Context, accountID string) (snapshot.Snapshot, error)
	SaveCart(ctx context.Context, accountID string, expectedVersion int64, state []byte) error
	CartCheckedOut(ctx context.Context, accountID string) (Checkout, error)
	LoadOrder(ctx context.Context, id string) (snapshot.Snapshot, error)
}

// Variant is what checkout needs to know of a SKU: what it is and what it costs now.
type Variant struct {
	SKU        string
	PhoneID    string
	Name       string
	Brand      string
	PriceCents int64
}

// Catalog resolves SKUs to their current names and prices.
type Catalog interface {
	Variants(ctx context.Context, skus []string) (map[string]Variant, error)
}

// Deps is what a cart grain needs from the member it runs on.
type Deps struct {
	Store   Store
	Catalog Catalog
	// MaxLineQuantity is read at every change, so a configuration change applies live.
	MaxLineQuantity func() int64
	Currency        string
	// Calls is the policy of the grain's calls to order grains; its timeout also
	// bounds a command whose caller sent no deadline.
	Calls call.Policy
	// StoreTimeout bounds one store or catalog call (within the caller's deadline).
	StoreTimeout time.Duration
	// Campaigns are the live campaigns that price a checkout (nil: none).
	Campaigns func() []*promo.Campaign
	Now       func() time.Time
	Logger    *slog.Logger
	// BornInSale places an order of one SKU without a discount in the write
	// that sells its units (order.PlaceBySale): one durable round. Off, every
	// order runs the order grain's saga.
	BornInSale bool
	// Placed, when set, is told the outcome of every order placed born in its
	// sale (the order grain tells its own).
	Placed func(outcome string)
	// Rounds, when set, is told the durable rounds of every confirmed order
	// born in its sale (one: path "born").
	Rounds func(path string, n int)
}

// deps holds a pointer, so every grain shares one Deps rather than copying it.
var deps = grainctx.NewSlot[*Deps]()

// Attach makes d the dependencies of the cart grains of system.
func Attach(system *actor.ActorSystem, d Deps) {
	if d.Now == nil {
		d.Now = time.Now
	}
	deps.Put(system, &d)
}

// Kind returns the cluster kind; an idle grain passivates after idle.
func Kind(idle time.Duration) *cluster.Kind {
	return cartpb.NewCartKind(func() cartpb.Cart { return &grain{} }, idle)
}

type grain struct {
	deps      *Deps
	accountID string
	cart      *Cart // nil until loaded (again)
	version   int64
	// emptying is the write of a cart emptied by a checkout, in flight (nil:
	// none); it reports its outcome once.
	emptying chan error
}

// log is the grain's logger, made when something is logged: made at activation and
// kept, it was about 210 B of an idle cart's heap (docs/benchmarks/memory.md).
func (g *grain) log() *slog.Logger {
	return g.deps.Logger.With("kind", KindName, "account", g.accountID)
}

func (g *grain) Init(gctx cluster.GrainContext) {
	g.deps = deps.Get(gctx.ActorSystem())
	g.accountID = gctx.Identity()
	// The activation loads on its own deadline: no request is being served yet.
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	if err := g.load(ctx); err != nil {
		g.log().Error("load snapshot failed; will retry on the next command", "err", err)
	}
}

func (g *grain) Terminate(cluster.GrainContext)      {}
func (g *grain) ReceiveDefault(cluster.GrainContext) {}

func (g *grain) Get(req *cartpb.GetCartRequest, _ cluster.GrainContext) (*cartpb.CartView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	return g.apply(ctx, func(*Cart) (bool, error) { return false, nil })
}

func (g *grain) SetLine(req *cartpb.SetLineRequest, _ cluster.GrainContext) (*cartpb.CartView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	return g.apply(ctx, func(c *Cart) (bool, error) {
		return c.SetQuantity(req.Sku, req.Quantity, g.deps.MaxLineQuantity())
	})
}

func (g *grain) Clear(req *cartpb.ClearCartRequest, _ cluster.GrainContext) (*cartpb.CartView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	return g.apply(ctx, func(c *Cart) (bool, error) { return c.Clear(), nil })
}

// serve is the context of one request: it ends at the caller's deadline.
func (g *grain) serve(req call.Deadlined) (context.Context, context.CancelFunc) {
	return call.Serve(req, g.deps.Calls.CallTimeout())
}

// Checkout prices the cart's lines from the catalog and the live campaigns, asks
// the order grain to place them, and empties the cart once the order is confirmed.
// An empty cart still asks the order grain, which knows whether this is a replay of
// an order already placed.
//
// A campaign may refuse the discount it was priced with (it ended, or its cap ran
// out a moment ago, before this member's view of it caught up): the order is then
// rejected, nothing is kept, and the cart prices the lines again without that
// campaign and places them again, up to maxRepricings times. With an expected
// total, the order grain refuses a total that differs instead (PRICE_CHANGED with
// the new total), and nothing is reserved.
func (g *grain) Checkout(req *cartpb.CheckoutRequest, gctx cluster.GrainContext) (*orderpb.OrderView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	if _, err := g.apply(ctx, func(*Cart) (bool, error) { return false, nil }); err != nil {
		return nil, err
	}
	client := orderpb.GetOrderGrainClient(gctx.Cluster(), req.OrderId)
	var refused []string
	for attempt := 0; ; attempt++ {
		lines, err := g.priceLines(ctx, refused)
		if err != nil {
			return nil, err
		}
		place := &orderpb.PlaceRequest{
			AccountId: g.accountID, RequestHash: req.RequestHash, Lines: lines,
			ShippingAddress: req.ShippingAddress, Currency: g.deps.Currency, CartRevision: g.cart.Revision(),
			DeadlineUnixMs:   call.Deadline(ctx),
			HasExpectedTotal: req.HasExpectedTotal, ExpectedTotalCents: req.ExpectedTotalCents,
		}
		if g.deps.BornInSale && order.BornInSale(place) {
			view, err := g.placeBySale(ctx, gctx, req.OrderId, place)
			if err == nil {
				return view, nil
			}
			if !errors.Is(err, order.ErrPlacedBefore) {
				return nil, err
			}
			// Placed before: its grain answers (a replay, a mismatch, a
			// rejected order placed again).
		}
		view, err := call.Do(ctx, g.deps.Calls, "order", "Place",
			func(opts ...cluster.GrainCallOption) (*orderpb.OrderView, error) { return client.Place(place, opts...) })
		if err != nil {
			var answered *cluster.GrainErrorResponse
			if !errors.As(err, &answered) {
				// No answer (unreachable, no time left): a plain error would cross
				// the wire as reason UNKNOWN, so say what it is.
				return nil, grainerr.Unexpected(g.log(), fmt.Errorf("order %s: %w", req.OrderId, err))
			}
			promos := answered.Metadata["promos"]
			if reasonpb.IsPriceChanged(answered) && promos != "" && attempt < maxRepricings {
				refused = append(refused, strings.Split(promos, ",")...)
				continue
			}
			return nil, answered // the order grain's own answer (out of stock, mismatch, ...)
		}
		if view.GetOrder().GetStatus() == string(order.StatusConfirmed) && g.cart != nil && g.cart.CheckedOutInto(req.OrderId) {
			g.empty()
		}
		return view, nil
	}
}

// placeBySale places an order of one SKU born in its sale, and empties the cart
// once it is confirmed. order.ErrPlacedBefore leaves the order to its grain.
func (g *grain) placeBySale(ctx context.Context, gctx cluster.GrainContext, orderID string, place *orderpb.PlaceRequest) (*orderpb.OrderView, error) {
	view, err := order.PlaceBySale(ctx, g.deps.Store, order.GrainSeller(gctx.Cluster(), g.deps.Calls), orderID, place, g.deps.Now())
	if errors.Is(err, order.ErrPlacedBefore) {
		return nil, err
	}
	if g.deps.Placed != nil {
		g.deps.Placed(order.Outcome(err))
	}
	if err != nil {
		return nil, order.GrainError(g.log(), err)
	}
	if g.deps.Rounds != nil {
		g.deps.Rounds("born", 1) // the sale's write, which holds the order
	}
	if g.cart != nil && g.cart.CheckedOutInto(orderID) {
		g.empty()
	}
	return view, nil
}

// maxRepricings bounds how often one checkout prices its lines again after a
// campaign refused its discount.
const maxRepricings = 3

// priceLines prices the cart's lines at the catalog's list prices, with the
// discounts of the live campaigns but those excluded.
func (g *grain) priceLines(ctx context.Context, exclude []string) ([]*orderpb.OrderLine, error) {
	cartLines := g.cart.Lines()
	if len(cartLines) == 0 {
		return nil, nil
	}
	skus := make([]string, len(cartLines))
	for i, l := range cartLines {
		skus[i] = l.SKU
	}
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	variants, err := g.deps.Catalog.Variants(ctx, skus)
	if err != nil {
		return nil, grainerr.Unexpected(g.log(), fmt.Errorf("cart %s: price lines: %w", g.accountID, err))
	}
	lines := make([]*orderpb.OrderLine, 0, len(cartLines))
	toPrice := make([]promo.PriceLine, 0, len(cartLines))
	for _, l := range cartLines {
		v, ok := variants[l.SKU]
		if !ok {
			return nil, reasonpb.ErrConflict("sku %s is no longer sold", l.SKU)
		}
		lines = append(lines, &orderpb.OrderLine{
			Sku: l.SKU, PhoneId: v.PhoneID, Name: v.Name, Quantity: l.Quantity, UnitPriceCents: v.PriceCents,
		})
		toPrice = append(toPrice, promo.PriceLine{SKU: l.SKU, Brand: v.Brand, ListCents: v.PriceCents, Quantity: l.Quantity})
	}
	if g.deps.Campaigns != nil {
		for i, p := range promo.Price(g.deps.Campaigns(), toPrice, g.deps.Now(), exclude) {
			lines[i].DiscountCents, lines[i].PromoId = p.DiscountCents, p.PromoID
		}
	}
	return lines, nil
}

// empty writes the cart a checkout emptied without making the checkout's answer
// wait for it. The order is durable before that answer, and it records the cart
// revision its lines came from: if this write is lost (a crash, a failed or
// fenced write), the durable cart still holds those lines at that revision, and
// the next load finds the confirmed order placed from it and empties the cart
// again (Recover). So a shopper never sees bought lines come back to their cart,
// and the checkout costs one durable write fewer before its answer.
func (g *grain) empty() {
	done := make(chan error, 1)
	g.emptying = done
	state, err := proto.Marshal(toProto(g.cart))
	if err != nil {
		done <- err
		return
	}
	store, id, version, timeout := g.deps.Store, g.accountID, g.version, g.deps.StoreTimeout
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- store.SaveCart(ctx, id, version, state)
	}()
}

// settle waits for the write of an emptied cart, if one is in flight: the next
// write is fenced on the version it makes. A lost one drops the cart, and the
// reload empties it again from its order.
func (g *grain) settle(ctx context.Context) error {
	if g.emptying == nil {
		return nil
	}
	select {
	case err := <-g.emptying:
		g.emptying = nil
		if err != nil {
			g.log().Warn("emptied cart not written; reloading (the confirmed order empties it again)", "err", err)
			g.cart = nil
			return nil
		}
		g.version++
		return nil
	case <-ctx.Done():
		return reasonpb.ErrUnavailable("cart %s: the write of the emptied cart is still running", g.accountID)
	}
}

// apply runs one command and persists before replying when anything changed; ctx
// bounds the store calls.
func (g *grain) apply(ctx context.Context, cmd func(*Cart) (bool, error)) (*cartpb.CartView, error) {
	if err := g.settle(ctx); err != nil {
		return nil, err
	}
	if g.cart == nil {
		if err := g.load(ctx); err != nil {
			return nil, grainerr.Unexpected(g.log(), fmt.Errorf("cart %s: load: %w", g.accountID, err))
		}
	}
	changed, err := cmd(g.cart)
	if err != nil {
		return nil, g.toGrainError(err)
	}
	if changed {
		if err := g.save(ctx); err != nil {
			g.cart = nil
			return nil, grainerr.Unexpected(g.log(), fmt.Errorf("cart %s: save: %w", g.accountID, err))
		}
	}
	return viewProto(g.cart), nil
}

func (g *grain) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	snap, err := g.deps.Store.LoadCart(ctx, g.accountID)
	if err != nil {
		return err
	}
	var st cartpb.CartState
	if err := proto.Unmarshal(snap.State, &st); err != nil {
		return fmt.Errorf("decode snapshot v%d: %w", snap.Version, err)
	}
	c := fromProto(&st)
	if len(c.Lines()) > 0 {
		last, err := g.deps.Store.CartCheckedOut(ctx, g.accountID)
		if err != nil {
			return err
		}
		g.cart, g.version = c, snap.Version
		if c.Recover(last) {
			g.log().Info("cart emptied again from its confirmed order", "order", last.OrderID, "revision", last.Revision)
			if err := g.save(ctx); err != nil {
				g.cart = nil
				return err
			}
		}
		return nil
	}
	g.cart, g.version = c, snap.Version
	return nil
}

func (g *grain) save(ctx context.Context) error {
	state, err := proto.Marshal(toProto(g.cart))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	if err := g.deps.Store.SaveCart(ctx, g.accountID, g.version, state); err != nil {
		if errors.Is(err, snapshot.ErrStale) {
			g.log().Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.version)
		}
		return err
	}
	g.version++
	return nil
}

func (g *grain) toGrainError(err error) error {
	switch {
	case errors.Is(err, ErrInvalidQuantity):
		return reasonpb.ErrInvalid("%v", err)
	default:
		return grainerr.Unexpected(g.log(), err)
	}
}

func toProto(c *Cart) *cartpb.CartState {
	return &cartpb.CartState{Lines: viewProto(c).Lines, CheckedOut: c.CheckedOut(), Revision: c.Revision()}
}

func fromProto(st *cartpb.CartState) *Cart {
	lines := make([]Line, len(st.Lines))
	for i, l := range st.Lines {
		lines[i] = Line{SKU: l.Sku, Quantity: l.Quantity}
	}
	return New(lines, st.CheckedOut, st.Revision)
}

func viewProto(c *Cart) *cartpb.CartView {
	v := &cartpb.CartView{}
	for _, l := range c.Lines() {
		v.Lines = append(v.Lines, &cartpb.CartLine{Sku: l.SKU, Quantity: l.Quantity})
	}
	return v
}
