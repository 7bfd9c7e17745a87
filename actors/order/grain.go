package order

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
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/snapshot"
	"phoneshop/cluster/call"
	"phoneshop/cluster/grainctx"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of order grains.
const KindName = "Order"

// Row is the queryable part of an order, written beside its snapshot in the same
// transaction so that listings never disagree with the grain.
type Row struct {
	ID         string
	AccountID  string
	Status     Status
	TotalCents int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ListCursor is where a page of an account's order history ends (newest first).
type ListCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// Store persists order snapshots, fenced like every grain snapshot: SaveOrder
// succeeds only when the stored version is expectedVersion, else snapshot.ErrStale.
type Store interface {
	LoadOrder(ctx context.Context, id string) (snapshot.Snapshot, error)
	SaveOrder(ctx context.Context, expectedVersion int64, state []byte, row Row) error
}

// Deps is what an order grain needs from the member it runs on.
type Deps struct {
	Store        Store
	Calls        call.Policy
	Now          func() time.Time
	StoreTimeout time.Duration
	Logger       *slog.Logger
	// Placed, when set, is told the outcome of every Place that ran the saga.
	Placed func(outcome string)
}

var deps = grainctx.NewSlot[Deps]()

// Attach makes d the dependencies of the order grains of system.
func Attach(system *actor.ActorSystem, d Deps) { deps.Put(system, d) }

// Kind returns the cluster kind; an idle grain passivates after idle.
func Kind(idle time.Duration) *cluster.Kind {
	return orderpb.NewOrderKind(func() orderpb.Order { return &grain{} }, idle)
}

// resume is the grain's message to itself: a saga was found unfinished at activation.
type resume struct{}

type grain struct {
	deps    Deps
	id      string
	log     *slog.Logger
	order   *Order // nil until loaded (again)
	version int64
	stock   Stock
}

func (g *grain) Init(ctx cluster.GrainContext) {
	g.deps = deps.Get(ctx.ActorSystem())
	g.id = ctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "order", g.id)
	g.stock = &grainStock{cluster: ctx.Cluster(), calls: g.deps.Calls}
	if err := g.load(); err != nil {
		g.log.Error("load snapshot failed; will retry on the next command", "err", err)
		return
	}
	if g.order.Unfinished() {
		ctx.Send(ctx.Self(), &resume{})
	}
}

func (g *grain) Terminate(cluster.GrainContext) {}

func (g *grain) ReceiveDefault(ctx cluster.GrainContext) {
	if _, ok := ctx.Message().(*resume); !ok {
		return
	}
	if g.order == nil || !g.order.Unfinished() {
		return
	}
	g.log.Info("resuming unfinished order", "status", g.order.Status)
	if err := g.order.Advance(context.Background(), g.stock, g.save, g.deps.Now); err != nil {
		g.log.Warn("resume did not finish; the next call retries", "err", err)
	}
}

func (g *grain) Place(req *orderpb.PlaceRequest, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	if err := g.ensureLoaded(); err != nil {
		return nil, err
	}
	replay, err := g.order.Place(g.id, req.AccountId, req.RequestHash, req.Currency,
		linesFromProto(req.Lines), addressFromProto(req.ShippingAddress), g.deps.Now())
	if err != nil {
		return nil, toGrainError(err)
	}
	err = g.order.Advance(context.Background(), g.stock, g.save, g.deps.Now)
	if !replay && g.deps.Placed != nil {
		g.deps.Placed(outcome(err))
	}
	if err != nil {
		return nil, toGrainError(err)
	}
	return &orderpb.OrderView{Order: toProto(g.order), Replayed: replay}, nil
}

func (g *grain) Get(req *orderpb.GetOrderRequest, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	if err := g.ensureOwned(req.AccountId); err != nil {
		return nil, err
	}
	if g.order.Unfinished() {
		if err := g.order.Advance(context.Background(), g.stock, g.save, g.deps.Now); err != nil {
			g.log.Warn("resume on read did not finish", "err", err)
		}
	}
	return &orderpb.OrderView{Order: toProto(g.order)}, nil
}

func (g *grain) Cancel(req *orderpb.OrderCommand, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, func(ctx context.Context) error {
		if err := g.order.Cancel(ctx, g.save, g.deps.Now); err != nil {
			return err
		}
		return g.order.Advance(ctx, g.stock, g.save, g.deps.Now)
	})
}

func (g *grain) Ship(req *orderpb.OrderCommand, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, func(ctx context.Context) error { return g.order.Ship(ctx, g.save, g.deps.Now) })
}

func (g *grain) Deliver(req *orderpb.OrderCommand, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, func(ctx context.Context) error { return g.order.Deliver(ctx, g.save, g.deps.Now) })
}

func (g *grain) command(req *orderpb.OrderCommand, cmd func(context.Context) error) (*orderpb.OrderView, error) {
	if err := g.ensureOwned(req.AccountId); err != nil {
		return nil, err
	}
	if err := cmd(context.Background()); err != nil {
		return nil, toGrainError(err)
	}
	return &orderpb.OrderView{Order: toProto(g.order)}, nil
}

// ensureOwned loads the order and hides it from any account but its own. A rejected
// order never existed as far as anyone reading is concerned.
func (g *grain) ensureOwned(accountID string) error {
	if err := g.ensureLoaded(); err != nil {
		return err
	}
	if !g.order.Exists() || g.order.Status == StatusRejected || g.order.Status == StatusPending ||
		(accountID != "" && g.order.AccountID != accountID) {
		return reasonpb.ErrNotFound("order %s not found", g.id)
	}
	return nil
}

func (g *grain) ensureLoaded() error {
	if g.order != nil {
		return nil
	}
	if err := g.load(); err != nil {
		return reasonpb.ErrUnavailable("order %s: %v", g.id, err)
	}
	return nil
}

func (g *grain) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	snap, err := g.deps.Store.LoadOrder(ctx, g.id)
	if err != nil {
		return err
	}
	o, err := Decode(snap.State)
	if err != nil {
		return fmt.Errorf("decode snapshot v%d: %w", snap.Version, err)
	}
	g.order, g.version = o, snap.Version
	return nil
}

// save is the saga's SaveFunc: a fenced write of the snapshot and its row. A fenced
// write means another activation owns the order now: drop ours.
func (g *grain) save(ctx context.Context, o *Order) error {
	state, err := proto.Marshal(toProto(o))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	row := Row{ID: o.ID, AccountID: o.AccountID, Status: o.Status, TotalCents: o.TotalCents, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	if err := g.deps.Store.SaveOrder(ctx, g.version, state, row); err != nil {
		if errors.Is(err, snapshot.ErrStale) {
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.version)
			if lerr := g.load(); lerr != nil {
				g.order = nil
			}
		}
		return err
	}
	g.version++
	return nil
}

// Decode reads an order from its snapshot bytes (empty bytes: an order never placed).
func Decode(state []byte) (*Order, error) {
	var st orderpb.OrderState
	if err := proto.Unmarshal(state, &st); err != nil {
		return nil, err
	}
	return fromProto(&st), nil
}

// FromState converts an order's wire form to the domain's.
func FromState(st *orderpb.OrderState) *Order { return fromProto(st) }

func outcome(err error) string {
	switch {
	case err == nil:
		return "confirmed"
	case errors.Is(err, ErrOutOfStock):
		return "out_of_stock"
	default:
		return "failed"
	}
}

func toGrainError(err error) error {
	var oos *OutOfStockError
	switch {
	case errors.As(err, &oos):
		return reasonpb.ErrOutOfStock("%v", err).WithMetadata(map[string]string{"skus": strings.Join(oos.SKUs, ",")})
	case errors.Is(err, ErrIdempotencyMismatch):
		return reasonpb.ErrIdempotencyMismatch("%v", err)
	case errors.Is(err, ErrEmpty):
		return reasonpb.ErrConflict("cart is empty")
	case errors.Is(err, ErrTransition):
		return reasonpb.ErrConflict("%v", err)
	case errors.Is(err, ErrInvalidLine):
		return reasonpb.ErrInvalid("%v", err)
	default:
		return reasonpb.ErrUnavailable("%v", err)
	}
}

// grainStock is the saga's Stock port on inventory grains.
type grainStock struct {
	cluster *cluster.Cluster
	calls   call.Policy
}

func (s *grainStock) Reserve(ctx context.Context, sku, orderID string, qty int64) error {
	return s.do(ctx, sku, "Reserve", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Reserve(&inventorypb.ReserveRequest{OrderId: orderID, Quantity: qty}, opts...)
		return err
	})
}

func (s *grainStock) Commit(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Commit", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Commit(&inventorypb.CommitRequest{OrderId: orderID}, opts...)
		return err
	})
}

func (s *grainStock) Release(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Release", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Release(&inventorypb.ReleaseRequest{OrderId: orderID}, opts...)
		return err
	})
}

func (s *grainStock) Return(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Return", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Return(&inventorypb.ReturnRequest{OrderId: orderID}, opts...)
		return err
	})
}

func (s *grainStock) do(ctx context.Context, sku, method string, f func(*inventorypb.InventoryGrainClient, []cluster.GrainCallOption) error) error {
	client := inventorypb.GetInventoryGrainClient(s.cluster, sku)
	_, err := call.Do(ctx, s.calls, "inventory", method, func(opts ...cluster.GrainCallOption) (struct{}, error) {
		return struct{}{}, f(client, opts)
	})
	switch {
	case err == nil:
		return nil
	case reasonpb.IsOutOfStock(err):
		return fmt.Errorf("%w: %s", ErrOutOfStock, sku)
	case reasonpb.IsNotFound(err):
		return fmt.Errorf("%w: %s", ErrReservationMissing, sku)
	default:
		return fmt.Errorf("inventory %s %s: %w", sku, method, err)
	}
}

func toProto(o *Order) *orderpb.OrderState {
	st := &orderpb.OrderState{
		Id: o.ID, AccountId: o.AccountID, RequestHash: o.RequestHash, Status: string(o.Status),
		Currency: o.Currency, TotalCents: o.TotalCents, RejectedSkus: o.RejectedSKUs,
		ShippingAddress: &orderpb.Address{
			Name: o.Address.Name, Line1: o.Address.Line1, Line2: o.Address.Line2,
			City: o.Address.City, PostalCode: o.Address.PostalCode, Country: o.Address.Country,
		},
	}
	if !o.CreatedAt.IsZero() {
		st.CreatedAt = timestamppb.New(o.CreatedAt)
	}
	if !o.UpdatedAt.IsZero() {
		st.UpdatedAt = timestamppb.New(o.UpdatedAt)
	}
	for _, l := range o.Lines {
		st.Lines = append(st.Lines, &orderpb.OrderLine{
			Sku: l.SKU, PhoneId: l.PhoneID, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents,
		})
	}
	return st
}

func fromProto(st *orderpb.OrderState) *Order {
	o := &Order{
		ID: st.Id, AccountID: st.AccountId, RequestHash: st.RequestHash, Status: Status(st.Status),
		Lines: linesFromProto(st.Lines), Address: addressFromProto(st.ShippingAddress),
		Currency: st.Currency, TotalCents: st.TotalCents, RejectedSKUs: st.RejectedSkus,
	}
	if st.CreatedAt != nil {
		o.CreatedAt = st.CreatedAt.AsTime()
	}
	if st.UpdatedAt != nil {
		o.UpdatedAt = st.UpdatedAt.AsTime()
	}
	return o
}

func linesFromProto(ls []*orderpb.OrderLine) []Line {
	out := make([]Line, len(ls))
	for i, l := range ls {
		out[i] = Line{SKU: l.Sku, PhoneID: l.PhoneId, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents}
	}
	return out
}

func addressFromProto(a *orderpb.Address) Address {
	return Address{Name: a.GetName(), Line1: a.GetLine1(), Line2: a.GetLine2(), City: a.GetCity(), PostalCode: a.GetPostalCode(), Country: a.GetCountry()}
}
