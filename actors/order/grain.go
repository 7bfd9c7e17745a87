package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/grainerr"
	"phoneshop/actors/snapshot"
	"phoneshop/grain/call"
	"phoneshop/grain/grainctx"
	"phoneshop/notify/outbox"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/promopb"
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
	// CartRevision is the revision of the cart the order was placed from (0: none).
	CartRevision uint64
}

// ListCursor is where a page of an account's order history ends (newest first).
type ListCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// HistoryPage is one page of an account's order history, newest first, as the
// store reads it.
type HistoryPage struct {
	Orders []*Order
	// Next continues the history after the page's last order; nil when no order
	// follows. It is the listing row's own (created_at, id), the key the history
	// is ordered by.
	Next *ListCursor
}

// OpsQuery selects orders of every account, as ops list them: of Status only
// (empty: every order that exists for its buyer), of AccountID only (empty: every
// account), at most Limit, after the cursor After (nil: from the start). OldestFirst
// orders a work queue (orders to ship); else the newest come first.
type OpsQuery struct {
	Status      Status
	AccountID   string
	Limit       int
	After       *ListCursor
	OldestFirst bool
}

// OpsOrder is an order as ops see it: with the e-mail address of its account.
type OpsOrder struct {
	*Order
	Email string
}

// OpsPage is one page of an OpsQuery; Next continues it (nil at the end).
type OpsPage struct {
	Orders []OpsOrder
	Next   *ListCursor
}

// Store persists order snapshots, fenced like every grain snapshot: SaveOrder
// succeeds only when the stored version is expectedVersion, else snapshot.ErrStale
// and nothing is written. In the same transaction it writes the row and the
// events of the write (the order confirmed, cancelled or shipped) to the outbox.
type Store interface {
	LoadOrder(ctx context.Context, id string) (snapshot.Snapshot, error)
	SaveOrder(ctx context.Context, expectedVersion int64, state []byte, row Row, events []outbox.Event) error
}

// eventOf is the routing key of the event a save to status makes true ("" none):
// each of these statuses is reached by exactly one save in an order's life.
var eventOf = map[Status]string{
	StatusConfirmed: outbox.OrderConfirmed,
	StatusCancelled: outbox.OrderCancelled,
	StatusShipped:   outbox.OrderShipped,
}

// EventPayload is an order as its events carry it: what its e-mail says, as the
// order was when the event happened.
type EventPayload struct {
	OrderID         string       `json:"order_id"`
	AccountID       string       `json:"account_id"`
	Status          string       `json:"status"`
	Lines           []EventLine  `json:"lines"`
	SubtotalCents   int64        `json:"subtotal_cents"`
	DiscountCents   int64        `json:"discount_cents"`
	TotalCents      int64        `json:"total_cents"`
	Currency        string       `json:"currency"`
	ShippingAddress EventAddress `json:"shipping_address"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

// EventLine is one line of an EventPayload.
type EventLine struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	DiscountCents  int64  `json:"discount_cents"`
	PromoID        string `json:"promo_id,omitempty"`
}

// EventAddress is the shipping address of an EventPayload.
type EventAddress struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

func eventPayload(o *Order) EventPayload {
	p := EventPayload{OrderID: o.ID, AccountID: o.AccountID, Status: string(o.Status), DiscountCents: o.DiscountCents(),
		TotalCents: o.TotalCents, Currency: o.Currency, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		ShippingAddress: EventAddress{Name: o.Address.Name, Line1: o.Address.Line1, Line2: o.Address.Line2,
			City: o.Address.City, PostalCode: o.Address.PostalCode, Country: o.Address.Country}}
	for _, l := range o.Lines {
		p.Lines = append(p.Lines, EventLine{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents,
			DiscountCents: l.DiscountCents, PromoID: l.PromoID})
		p.SubtotalCents += l.Subtotal()
	}
	return p
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
	// Parked, when set, is told of every saga parked in needs_attention.
	Parked func()
	// Rounds, when set, is told how many durable rounds each confirmed Place
	// waited for before its answer (path "saga").
	Rounds func(path string, n int)
}

var deps = grainctx.NewSlot[Deps]()

// Attach makes d the dependencies of the order grains of system.
func Attach(system *actor.ActorSystem, d Deps) { deps.Put(system, d) }

// Kind returns the cluster kind; an idle grain passivates after idle.
func Kind(idle time.Duration) *cluster.Kind {
	return orderpb.NewOrderKind(func() orderpb.Order { return &grain{} }, idle)
}

// sagaTick is the grain's message to itself: an unfinished saga is due for another
// attempt (found unfinished at activation, or left so by a failed step).
type sagaTick struct{}

// stopIfNone stops an activation that found no order: a read or command for an id
// that names nothing must not keep a grain alive for the idle timeout. It goes
// through the mailbox, so a Place that arrived meanwhile keeps the grain.
type stopIfNone struct{}

// parkAfter is how many attempts in a row a saga may fail for a reason no retry
// cures (grainerr.Transient says no) before it is parked in needs_attention: one
// such failure could still be a race, a few in a row (within a second of backoff)
// are not.
const parkAfter = 3

// The saga's retry backoff: a step that failed is tried again after firstSagaRetry,
// then twice as long each time, up to maxSagaRetry, until the order rests. Every
// tick counts as activity, so an unfinished order is not passivated as long as
// maxSagaRetry stays below the grain idle timeout (minutes).
const (
	firstSagaRetry = 100 * time.Millisecond
	maxSagaRetry   = 30 * time.Second
)

type grain struct {
	deps    Deps
	id      string
	log     *slog.Logger
	order   *Order // nil until loaded (again)
	version int64
	ports   Ports
	self    *actor.PID
	sched   *scheduler.TimerScheduler
	// retry cancels the armed sagaTick timer (nil: none armed); backoff is the wait
	// it was armed with (0: the saga rests).
	retry   scheduler.CancelFunc
	backoff time.Duration
	// hardFailures counts the saga's attempts in a row that failed for a reason no
	// retry cures; at parkAfter the saga is parked.
	hardFailures int
}

func (g *grain) Init(gctx cluster.GrainContext) {
	g.deps = deps.Get(gctx.ActorSystem())
	g.id = gctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "order", g.id)
	g.ports = Ports{
		Stock:  &grainStock{cluster: gctx.Cluster(), calls: g.deps.Calls, created: g.createdMs},
		Promos: &grainPromos{cluster: gctx.Cluster(), calls: g.deps.Calls, created: g.createdMs},
	}
	g.self = gctx.Self()
	g.sched = scheduler.NewTimerScheduler(gctx.ActorSystem().Root)
	// The activation loads on its own deadline: no request is being served yet.
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	if err := g.load(ctx); err != nil {
		// The order may hold an unfinished saga: the timer retries the load.
		g.log.Error("load snapshot failed; retrying", "err", err)
		g.settle()
		return
	}
	if g.order.Unfinished() {
		gctx.Send(g.self, &sagaTick{})
	}
}

func (g *grain) Terminate(cluster.GrainContext) {
	if g.retry != nil {
		g.retry()
		g.retry = nil
	}
}

// ReceiveDefault runs the saga's retries. A retry is work no request waits for: it
// runs on its own deadline, never on what is left of the request that started the
// saga.
func (g *grain) ReceiveDefault(gctx cluster.GrainContext) {
	switch gctx.Message().(type) {
	case *sagaTick:
	case *stopIfNone:
		if g.order != nil && !g.order.Exists() {
			gctx.Poison(g.self)
		}
		return
	default:
		return
	}
	g.retry = nil
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.Calls.CallTimeout())
	defer cancel()
	err := g.resume(ctx)
	switch {
	case err == nil:
		g.hardFailures = 0
	case grainerr.Transient(err):
		g.hardFailures = 0
		g.log.Warn("saga did not finish; retrying on the grain's timer", "err", err, "in", g.backoff)
	default:
		g.hardFailures++
		if g.hardFailures < parkAfter || g.order == nil {
			g.log.Error("saga failed for a reason a retry may not cure; retrying on the grain's timer",
				"err", err, "in", g.backoff, "attempt", g.hardFailures)
			return
		}
		g.park(ctx, err)
	}
}

// park stops a saga that keeps failing for a reason no retry cures: the order goes
// to needs_attention, where ops see it, instead of retrying every maxSagaRetry for
// ever. If the park's own write fails, the timer tries the saga (and the park)
// again.
func (g *grain) park(ctx context.Context, cause error) {
	from := g.order.Status
	if err := g.order.Park(ctx, cause.Error(), g.save, g.deps.Now); err != nil {
		g.log.Error("parking a failed saga failed; retrying on the grain's timer", "err", err, "cause", cause)
		return
	}
	g.hardFailures = 0
	g.settle() // the order rests: the timer is disarmed
	g.log.Error("saga parked in needs_attention: ops must look at it", "from", from, "cause", cause)
	if g.deps.Parked != nil {
		g.deps.Parked()
	}
}

func (g *grain) Place(req *orderpb.PlaceRequest, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	if err := g.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	var expected *int64
	if req.HasExpectedTotal {
		expected = &req.ExpectedTotalCents
	}
	replay, err := g.order.Place(g.id, req.AccountId, req.RequestHash, req.Currency,
		linesFromProto(req.Lines), addressFromProto(req.ShippingAddress), expected, req.CartRevision, g.deps.Now())
	if err != nil {
		return nil, g.toGrainError(err)
	}
	var rounds int
	err = g.order.Advance(ctx, countRounds(g.ports, &rounds), func(ctx context.Context, o *Order) error {
		rounds++
		return g.save(ctx, o)
	}, g.deps.Now)
	g.settle()
	if !replay && g.deps.Placed != nil {
		g.deps.Placed(Outcome(err))
	}
	if !replay && err == nil && g.deps.Rounds != nil {
		g.deps.Rounds("saga", rounds)
	}
	if err != nil {
		return nil, g.toGrainError(err)
	}
	return g.view(replay)
}

// Get reads the order. It never runs the saga: an unfinished order finishes on the
// grain's own timer, and a read must not wait for inventory grains.
func (g *grain) Get(req *orderpb.GetOrderRequest, gctx cluster.GrainContext) (*orderpb.OrderView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	if err := g.ensureOwned(ctx, gctx, req.AccountId); err != nil {
		return nil, err
	}
	return g.view(false)
}

// Resume is the wake-up call for an order a crash interrupted: the activation it
// causes, and one attempt under the caller's deadline, run the saga; what is left
// is retried on the grain's own timer.
//
// With Unpark, a saga parked in needs_attention is put back where it stopped and
// run again (ops resume it once its cause is fixed).
func (g *grain) Resume(req *orderpb.ResumeRequest, _ cluster.GrainContext) (*orderpb.OrderView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	if req.Unpark {
		if err := g.ensureLoaded(ctx); err != nil {
			return nil, err
		}
		if err := g.order.Unpark(ctx, g.save, g.deps.Now); err != nil {
			return nil, g.toGrainError(err)
		}
		g.hardFailures = 0
	}
	if err := g.resume(ctx); err != nil {
		return nil, g.toGrainError(err)
	}
	if !g.order.Exists() {
		return nil, reasonpb.ErrNotFound("order %s not found", g.id)
	}
	return g.view(false)
}

func (g *grain) Cancel(req *orderpb.OrderCommand, gctx cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, gctx, func(ctx context.Context) error {
		if err := g.order.Cancel(ctx, g.save, g.deps.Now); err != nil {
			return err
		}
		err := g.order.Advance(ctx, g.ports, g.save, g.deps.Now)
		g.settle()
		return err
	})
}

func (g *grain) Ship(req *orderpb.OrderCommand, gctx cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, gctx, func(ctx context.Context) error { return g.order.Ship(ctx, g.save, g.deps.Now) })
}

func (g *grain) Deliver(req *orderpb.OrderCommand, gctx cluster.GrainContext) (*orderpb.OrderView, error) {
	return g.command(req, gctx, func(ctx context.Context) error { return g.order.Deliver(ctx, g.save, g.deps.Now) })
}

func (g *grain) command(req *orderpb.OrderCommand, gctx cluster.GrainContext, cmd func(context.Context) error) (*orderpb.OrderView, error) {
	ctx, cancel := g.serve(req)
	defer cancel()
	if err := g.ensureOwned(ctx, gctx, req.AccountId); err != nil {
		return nil, err
	}
	if err := cmd(ctx); err != nil {
		return nil, g.toGrainError(err)
	}
	return g.view(false)
}

// createdMs is when the order was created, Unix milliseconds (0: not loaded, or
// never placed). Every stock and grant call carries it: inventory and promo
// grains keep only their recent ledger in memory, and look up the entry of an
// order created before it begins.
func (g *grain) createdMs() int64 {
	if g.order == nil || g.order.CreatedAt.IsZero() {
		return 0
	}
	return g.order.CreatedAt.UnixMilli()
}

// serve is the context of one request: it ends at the caller's deadline, and bounds
// every store and inventory call made for the request.
func (g *grain) serve(req call.Deadlined) (context.Context, context.CancelFunc) {
	return call.Serve(req, g.deps.Calls.CallTimeout())
}

// view answers the order as it is. A save that lost to another activation drops
// the order when it cannot reload it: that is a retry, not a crash.
func (g *grain) view(replayed bool) (*orderpb.OrderView, error) {
	if g.order == nil {
		return nil, reasonpb.ErrUnavailable("order %s: reloading after another activation moved it on", g.id)
	}
	return &orderpb.OrderView{Order: toProto(g.order), Replayed: replayed}, nil
}

// resume loads the order if need be and, when its saga is unfinished, runs it under
// ctx; the retry timer then follows what is left.
func (g *grain) resume(ctx context.Context) error {
	err := g.ensureLoaded(ctx)
	if err == nil && g.order.Unfinished() {
		g.log.Info("resuming unfinished order", "status", g.order.Status)
		err = g.order.Advance(ctx, g.ports, g.save, g.deps.Now)
	}
	g.settle()
	return err
}

// settle keeps the retry timer in step with the saga, after every attempt to run
// it: disarmed once the order rests, armed (with the next, longer backoff) while
// it is unfinished or could not be loaded to tell. The timer's message goes
// through the grain's mailbox, so a retry never runs beside a command.
func (g *grain) settle() {
	if g.order != nil && !g.order.Unfinished() {
		if g.retry != nil {
			g.retry()
			g.retry = nil
		}
		g.backoff = 0
		return
	}
	if g.retry != nil {
		return // armed already; its tick runs the saga
	}
	g.backoff = min(max(2*g.backoff, firstSagaRetry), maxSagaRetry)
	g.retry = g.sched.SendOnce(g.backoff, g.self, &sagaTick{})
}

// ensureOwned loads the order and hides it from any account but its own. A rejected
// order never existed as far as anyone reading is concerned. An activation that
// found no order at all stops (stopIfNone).
func (g *grain) ensureOwned(ctx context.Context, gctx cluster.GrainContext, accountID string) error {
	if err := g.ensureLoaded(ctx); err != nil {
		return err
	}
	if !g.order.Exists() {
		gctx.Send(g.self, &stopIfNone{})
	}
	if !g.order.Exists() || g.order.Status == StatusRejected || g.order.Status == StatusPending ||
		(accountID != "" && g.order.AccountID != accountID) {
		return reasonpb.ErrNotFound("order %s not found", g.id)
	}
	return nil
}

func (g *grain) ensureLoaded(ctx context.Context) error {
	if g.order != nil {
		return nil
	}
	if err := g.load(ctx); err != nil {
		return grainerr.Unexpected(g.log, fmt.Errorf("order %s: load: %w", g.id, err))
	}
	return nil
}

func (g *grain) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
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
// write means another activation owns the order now: drop ours and reload theirs
// (a failed reload leaves the order unloaded: the next command or retry loads it).
func (g *grain) save(ctx context.Context, o *Order) error {
	state, err := Encode(o)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	row, events, err := Record(o)
	if err != nil {
		return err
	}
	if err := g.deps.Store.SaveOrder(sctx, g.version, state, row, events); err != nil {
		if errors.Is(err, snapshot.ErrStale) {
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.version)
			if lerr := g.load(ctx); lerr != nil {
				g.log.Warn("reload after a fenced write failed", "err", lerr)
				g.order = nil
			}
			return fmt.Errorf("%w: %w", ErrSuperseded, err)
		}
		return err
	}
	g.version++
	return nil
}

// Record is what a save of o writes beside its snapshot: its listing row, and the
// event its status makes true (none for most statuses).
func Record(o *Order) (Row, []outbox.Event, error) {
	row := Row{ID: o.ID, AccountID: o.AccountID, Status: o.Status, TotalCents: o.TotalCents, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		CartRevision: o.CartRevision}
	key := eventOf[o.Status]
	if key == "" {
		return row, nil, nil
	}
	e, err := outbox.New(key, o.ID, eventPayload(o), o.UpdatedAt)
	if err != nil {
		return Row{}, nil, err
	}
	return row, []outbox.Event{e}, nil
}

// Decode reads an order from its snapshot bytes (empty bytes: an order never placed).
func Decode(state []byte) (*Order, error) {
	var st orderpb.OrderState
	if err := proto.Unmarshal(state, &st); err != nil {
		return nil, err
	}
	return fromProto(&st), nil
}

// Encode is the stored form of an order, which Decode reads.
func Encode(o *Order) ([]byte, error) { return proto.Marshal(toProto(o)) }

// FromState converts an order's wire form to the domain's.
func FromState(st *orderpb.OrderState) *Order { return fromProto(st) }

// Outcome is the metric label of a checkout that ended with err (nil: confirmed).
func Outcome(err error) string {
	switch {
	case err == nil:
		return "confirmed"
	case errors.Is(err, ErrOutOfStock):
		return "out_of_stock"
	case errors.Is(err, ErrPriceChanged):
		return "price_changed"
	case errors.Is(err, ErrLimitExceeded):
		return "limit_exceeded"
	default:
		return "failed"
	}
}

func (g *grain) toGrainError(err error) error { return GrainError(g.log, err) }

// GrainError is the answer a grain gives for a failure of the order domain: a
// reasonpb error with the metadata the edge maps to its API error (the SKUs out
// of stock, the campaigns that refused a discount, ...); anything else is
// unexpected, and logged on log.
func GrainError(log *slog.Logger, err error) error {
	var oos *OutOfStockError
	var changed *PriceChangedError
	var overLimit *LimitExceededError
	switch {
	case errors.As(err, &overLimit):
		return reasonpb.ErrLimitExceeded("%v", err).WithMetadata(map[string]string{
			"promo_id": overLimit.PromoID, "remaining": strconv.FormatInt(overLimit.Remaining, 10)})
	case errors.As(err, &changed):
		meta := map[string]string{"promos": strings.Join(changed.Promos, ",")}
		if len(changed.Promos) == 0 {
			meta["total_cents"] = strconv.FormatInt(changed.TotalCents, 10)
		}
		return reasonpb.ErrPriceChanged("%v", err).WithMetadata(meta)
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
		// ErrSuperseded wraps snapshot.ErrStale: a retry meets the winner's order.
		return grainerr.Unexpected(log, err)
	}
}

// countRounds wraps ports so that every call that waits for a durable write (a
// sale, a return, a campaign's grant or return) counts one round in n: the saga
// makes them one after another.
func countRounds(ports Ports, n *int) Ports {
	return Ports{Stock: roundStock{ports.Stock, n}, Promos: roundPromos{ports.Promos, n}}
}

type roundStock struct {
	Stock
	n *int
}

func (s roundStock) Commit(ctx context.Context, sku, orderID string) error {
	*s.n++
	return s.Stock.Commit(ctx, sku, orderID)
}

func (s roundStock) Return(ctx context.Context, sku, orderID string) error {
	*s.n++
	return s.Stock.Return(ctx, sku, orderID)
}

type roundPromos struct {
	Promos
	n *int
}

func (p roundPromos) Grant(ctx context.Context, promoID, orderID, accountID string, units int64) error {
	*p.n++
	return p.Promos.Grant(ctx, promoID, orderID, accountID, units)
}

func (p roundPromos) Return(ctx context.Context, promoID, orderID string) error {
	*p.n++
	return p.Promos.Return(ctx, promoID, orderID)
}

// grainStock is the saga's Stock port on inventory grains. created is when the
// order was created (see grain.createdMs).
type grainStock struct {
	cluster *cluster.Cluster
	calls   call.Policy
	created func() int64
}

func (s *grainStock) Reserve(ctx context.Context, sku, orderID string, qty int64) error {
	return s.do(ctx, sku, "Reserve", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Reserve(&inventorypb.ReserveRequest{OrderId: orderID, Quantity: qty, DeadlineUnixMs: call.Deadline(ctx),
			OrderCreatedUnixMs: s.created()}, opts...)
		return err
	})
}

func (s *grainStock) Commit(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Commit", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Commit(&inventorypb.CommitRequest{OrderId: orderID, DeadlineUnixMs: call.Deadline(ctx),
			OrderCreatedUnixMs: s.created()}, opts...)
		return err
	})
}

func (s *grainStock) Release(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Release", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Release(&inventorypb.ReleaseRequest{OrderId: orderID, DeadlineUnixMs: call.Deadline(ctx)}, opts...)
		return err
	})
}

func (s *grainStock) Return(ctx context.Context, sku, orderID string) error {
	return s.do(ctx, sku, "Return", func(c *inventorypb.InventoryGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Return(&inventorypb.ReturnRequest{OrderId: orderID, DeadlineUnixMs: call.Deadline(ctx),
			OrderCreatedUnixMs: s.created()}, opts...)
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

// grainPromos is the saga's Promos port on promo grains. created is when the
// order was created (see grain.createdMs).
type grainPromos struct {
	cluster *cluster.Cluster
	calls   call.Policy
	created func() int64
}

func (p *grainPromos) Grant(ctx context.Context, promoID, orderID, accountID string, units int64) error {
	return p.do(ctx, promoID, "Grant", func(c *promopb.PromoGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Grant(&promopb.GrantRequest{OrderId: orderID, AccountId: accountID, Units: units, DeadlineUnixMs: call.Deadline(ctx),
			OrderCreatedUnixMs: p.created()}, opts...)
		return err
	})
}

func (p *grainPromos) Return(ctx context.Context, promoID, orderID string) error {
	return p.do(ctx, promoID, "Return", func(c *promopb.PromoGrainClient, opts []cluster.GrainCallOption) error {
		_, err := c.Return(&promopb.ReturnGrantRequest{OrderId: orderID, DeadlineUnixMs: call.Deadline(ctx),
			OrderCreatedUnixMs: p.created()}, opts...)
		return err
	})
}

func (p *grainPromos) do(ctx context.Context, promoID, method string, f func(*promopb.PromoGrainClient, []cluster.GrainCallOption) error) error {
	client := promopb.GetPromoGrainClient(p.cluster, promoID)
	_, err := call.Do(ctx, p.calls, "promo", method, func(opts ...cluster.GrainCallOption) (struct{}, error) {
		return struct{}{}, f(client, opts)
	})
	switch {
	case err == nil:
		return nil
	case reasonpb.IsPriceChanged(err):
		return fmt.Errorf("%w: %s", ErrPriceChanged, promoID)
	case reasonpb.IsLimitExceeded(err):
		var answered *cluster.GrainErrorResponse
		remaining := int64(-1)
		if errors.As(err, &answered) {
			if n, perr := strconv.ParseInt(answered.Metadata["remaining"], 10, 64); perr == nil {
				remaining = n
			}
		}
		if remaining < 0 {
			return fmt.Errorf("promo %s %s: a limit refusal without the units left: %w", promoID, method, err)
		}
		return &LimitExceededError{PromoID: promoID, Remaining: remaining}
	default:
		return fmt.Errorf("promo %s %s: %w", promoID, method, err)
	}
}

func toProto(o *Order) *orderpb.OrderState {
	st := &orderpb.OrderState{
		Id: o.ID, AccountId: o.AccountID, RequestHash: o.RequestHash, Status: string(o.Status),
		Currency: o.Currency, TotalCents: o.TotalCents, RejectedSkus: o.RejectedSKUs, RejectedPromos: o.RejectedPromos,
		CartRevision: o.CartRevision, ParkedFrom: string(o.ParkedFrom), Attention: o.Attention,
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
	if o.OverLimit != nil {
		st.LimitPromo, st.LimitRemaining = o.OverLimit.PromoID, o.OverLimit.Remaining
	}
	for _, l := range o.Lines {
		st.Lines = append(st.Lines, &orderpb.OrderLine{
			Sku: l.SKU, PhoneId: l.PhoneID, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents,
			DiscountCents: l.DiscountCents, PromoId: l.PromoID,
		})
	}
	return st
}

func fromProto(st *orderpb.OrderState) *Order {
	o := &Order{
		ID: st.Id, AccountID: st.AccountId, RequestHash: st.RequestHash, Status: Status(st.Status),
		Lines: linesFromProto(st.Lines), Address: addressFromProto(st.ShippingAddress),
		Currency: st.Currency, TotalCents: st.TotalCents, RejectedSKUs: st.RejectedSkus, RejectedPromos: st.RejectedPromos,
		CartRevision: st.CartRevision, ParkedFrom: Status(st.ParkedFrom), Attention: st.Attention,
	}
	if st.CreatedAt != nil {
		o.CreatedAt = st.CreatedAt.AsTime()
	}
	if st.UpdatedAt != nil {
		o.UpdatedAt = st.UpdatedAt.AsTime()
	}
	if st.LimitPromo != "" {
		o.OverLimit = &LimitExceededError{PromoID: st.LimitPromo, Remaining: st.LimitRemaining}
	}
	return o
}

func linesFromProto(ls []*orderpb.OrderLine) []Line {
	out := make([]Line, len(ls))
	for i, l := range ls {
		out[i] = Line{SKU: l.Sku, PhoneID: l.PhoneId, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents,
			DiscountCents: l.DiscountCents, PromoID: l.PromoId}
	}
	return out
}

func addressFromProto(a *orderpb.Address) Address {
	return Address{Name: a.GetName(), Line1: a.GetLine1(), Line2: a.GetLine2(), City: a.GetCity(), PostalCode: a.GetPostalCode(), Country: a.GetCountry()}
}
