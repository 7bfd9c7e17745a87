package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/grainerr"
	"phoneshop/actors/snapshot"
	"phoneshop/grain/call"
	"phoneshop/grain/durable"
	"phoneshop/grain/grainctx"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of inventory grains.
const KindName = "Inventory"

// Store persists inventory snapshots and their ledgers (sales, receipts).
// SaveInventory is fenced: it succeeds only when the stored version is
// expectedVersion (0 = never saved) and then stores expectedVersion+1; otherwise
// it returns snapshot.ErrStale. In the same transaction it applies the ledgers'
// changes (returned sales first, then added ones; a receipt already stored is
// left as it is) and records the item's level where the catalog can read it.
//
// InventorySales reads the sales made at or after since (zero: all of them); a
// sale stored without its time counts as made before any since. InventorySale
// and InventoryReceipt look up one order's sale and one receipt.
type Store interface {
	LoadInventory(ctx context.Context, sku string) (snapshot.Snapshot, error)
	InventorySales(ctx context.Context, sku string, since time.Time) (map[string]Sale, error)
	InventorySale(ctx context.Context, sku, orderID string) (Sale, bool, error)
	InventoryReceipt(ctx context.Context, sku, requestID string) (Receipt, bool, error)
	SaveInventory(ctx context.Context, sku string, expectedVersion int64, state []byte, level Level, change LedgerChange) error
}

// Deps is what an inventory grain needs from the member it runs on.
type Deps struct {
	Store Store
	// ReservationTTL is read at every reservation, so a configuration change
	// applies without a restart.
	ReservationTTL func() time.Duration
	Now            func() time.Time
	// StoreTimeout bounds one load or save (within the callers' deadlines).
	StoreTimeout time.Duration
	// Calls is the member's grain-call policy: its timeout bounds a command whose
	// caller sent no deadline.
	Calls call.Policy
	// GroupCommit lets the grain apply commands while a write is in flight and
	// answer them when a write covering them commits. Off, every change is written
	// before the next command is taken (one command per commit).
	GroupCommit bool
	// OnLevel, when set, is told every durable change of the level (after the write
	// committed): caches and the catalog's stock state follow it. It must not block.
	OnLevel func(sku string, before, after Level)
	Logger  *slog.Logger
}

var deps = grainctx.NewSlot[Deps]()

// Attach makes d the dependencies of the inventory grains of system.
func Attach(system *actor.ActorSystem, d Deps) { deps.Put(system, d) }

// Kind returns the cluster kind; an idle grain passivates after idle.
func Kind(idle time.Duration) *cluster.Kind {
	return inventorypb.NewInventoryKind(func() inventorypb.Inventory { return &grain{} }, idle)
}

// expireTick is the grain's own timer message: reservations may be due.
type expireTick struct{}

// reloadRetry is how soon a grain that could not load its snapshot tries again on
// its own, so that due reservations expire even when no command comes.
const reloadRetry = time.Second

type grain struct {
	deps   Deps
	sku    string
	log    *slog.Logger
	item   *Item // nil until loaded (again)
	writes durable.Pipeline
	// durableLevel is the level as of the last committed write; writtenLevel the
	// one the write in flight carries.
	durableLevel, writtenLevel Level
	timer                      scheduler.CancelFunc
	timerAt                    time.Time // when timer fires
	sched                      *scheduler.TimerScheduler
	self                       *actor.PID
	root                       *actor.RootContext
}

func (g *grain) Init(gctx cluster.GrainContext) {
	g.deps = deps.Get(gctx.ActorSystem())
	g.sku = gctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "sku", g.sku)
	g.self = gctx.Self()
	g.root = gctx.ActorSystem().Root
	g.sched = scheduler.NewTimerScheduler(g.root)
	// The activation loads on its own deadline: no request is being served yet.
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	if err := g.load(ctx); err != nil {
		g.log.Error("load snapshot failed; retrying", "err", err, "in", reloadRetry)
		g.retryLoad()
	}
}

func (g *grain) Terminate(cluster.GrainContext) {
	if g.timer != nil {
		g.timer()
	}
}

func (g *grain) ReceiveDefault(ctx cluster.GrainContext) {
	switch msg := ctx.Message().(type) {
	case *durable.Done:
		g.writeDone(ctx, msg.Err)
	case *expireTick:
		g.timer = nil
		// Nobody waits for the expiry: it runs on its own deadline.
		tctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
		defer cancel()
		if err := g.apply(tctx, ctx, hold, func(context.Context, *Item) (bool, error) { return false, nil }, nil); err != nil {
			g.retryLoad()
			return
		}
		// Holds reach the store with the writes of facts, and so do the levels
		// the catalog shows. When expired holds were among them, the level is
		// written again, so that no stale hold keeps a SKU looking sold out.
		if g.item.Level() != g.durableLevel && g.writes.Submit(ctx, true, nil) {
			g.startWrite(ctx)
		}
		g.armTimer()
	}
}

func (g *grain) Reserve(req *inventorypb.ReserveRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	ttl := g.deps.ReservationTTL()
	return g.serve(req, gctx, hold, func(ctx context.Context, it *Item) (bool, error) {
		if err := g.knowSale(ctx, it, req.OrderId, req.OrderCreatedUnixMs); err != nil {
			return false, err
		}
		return it.Reserve(req.OrderId, req.Quantity, g.deps.Now(), ttl)
	})
}

func (g *grain) Commit(req *inventorypb.CommitRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, fact, func(ctx context.Context, it *Item) (bool, error) {
		if err := g.knowSale(ctx, it, req.OrderId, req.OrderCreatedUnixMs); err != nil {
			return false, err
		}
		return it.Commit(req.OrderId, g.deps.Now())
	})
}

// Sell sells to an order born with its sale (a one-SKU checkout): the caller
// knows the order is new (its store holds no such order), so its sale is not
// looked up. The answer waits for the write that holds both.
func (g *grain) Sell(req *inventorypb.SellRequest, _ func(*inventorypb.SellResult), _ func(error), gctx cluster.GrainContext) error {
	var before bool
	return g.serveAs(req, gctx, fact, func(_ context.Context, it *Item) (bool, error) {
		changed, sold, err := it.Sell(req.OrderId, req.Quantity, g.deps.Now(), req.OrderState)
		before = sold
		return changed, err
	}, func(l *inventorypb.StockLevel) any { return &inventorypb.SellResult{Level: l, SoldBefore: before} })
}

func (g *grain) Release(req *inventorypb.ReleaseRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, hold, func(_ context.Context, it *Item) (bool, error) { return it.Release(req.OrderId) })
}

func (g *grain) Return(req *inventorypb.ReturnRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, fact, func(ctx context.Context, it *Item) (bool, error) {
		if err := g.knowSale(ctx, it, req.OrderId, req.OrderCreatedUnixMs); err != nil {
			return false, err
		}
		return it.Return(req.OrderId)
	})
}

func (g *grain) Receive(req *inventorypb.ReceiveRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	if req.RequestId == "" {
		return reasonpb.ErrInvalid("receive needs a request id")
	}
	return g.serve(req, gctx, fact, func(ctx context.Context, it *Item) (bool, error) {
		if !it.KnowsReceipt(req.RequestId) {
			lctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
			defer cancel()
			r, found, err := g.deps.Store.InventoryReceipt(lctx, g.sku, req.RequestId)
			if err != nil {
				return false, fmt.Errorf("inventory %s: look up receipt %s: %w", g.sku, req.RequestId, err)
			}
			if found {
				it.RecallReceipt(r)
			}
		}
		return it.Receive(req.RequestId, req.Quantity)
	})
}

func (g *grain) Level(req *inventorypb.LevelRequest, _ func(*inventorypb.StockLevel), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, fact, func(context.Context, *Item) (bool, error) { return false, nil })
}

// knowSale makes sure the item knows whether orderID holds a sale before a
// command on it: an order created before the sales in memory begin (or whose
// creation is unknown, createdMs 0) has its sale looked up in the store. Memory
// drops only what is durable (Item.Compact), so the store holds every sale memory
// does not: a retried commit of an old order sells nothing twice, and a cancel
// returns its units once.
func (g *grain) knowSale(ctx context.Context, it *Item, orderID string, createdMs int64) error {
	var created time.Time
	if createdMs > 0 {
		created = time.UnixMilli(createdMs)
	}
	if it.KnowsSale(orderID, created) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	sale, found, err := g.deps.Store.InventorySale(ctx, g.sku, orderID)
	if err != nil {
		return fmt.Errorf("inventory %s: look up the sale of %s: %w", g.sku, orderID, err)
	}
	it.RecallSale(orderID, sale, found)
	return nil
}

// durability says whether a command's change must be durable before its answer.
type durability bool

const (
	// fact: a receipt, a sale, a return. It is answered once a write that
	// covers it has committed, as is a read of a state with such a change not
	// yet durable.
	fact durability = true
	// hold: a reservation, a release, an expiry. A hold is not a fact, so it is
	// answered at once and written only with the next write a fact starts (or
	// not at all). A crash may drop a hold that was answered, or bring back one
	// that was released: neither sells a unit. A dropped reservation makes its
	// order's commit find it missing, and the saga reserves again from what is
	// available then (a committing order is durable before its first commit).
	// A released one that comes back holds its units until it expires. Every
	// sale is a fact, checked against the stock the grain holds when it runs, so
	// no unit is sold twice, whatever holds a crash dropped. A flash sale's
	// checkout then costs its hot SKU one durable write (the sale), not two.
	hold durability = false
)

// serve applies one request's command under the caller's deadline. A command whose
// caller has already given up is not applied: under a backlog (a flash sale) the
// grain spends no work, and no write, on answers nobody reads.
func (g *grain) serve(req call.Deadlined, gctx cluster.GrainContext, d durability, cmd func(context.Context, *Item) (bool, error)) error {
	return g.serveAs(req, gctx, d, cmd, nil)
}

// serveAs is serve for a command whose answer is not the bare level: reply makes
// it from the level (nil: the level).
func (g *grain) serveAs(req call.Deadlined, gctx cluster.GrainContext, d durability, cmd func(context.Context, *Item) (bool, error),
	reply func(*inventorypb.StockLevel) any) error {
	ctx, cancel := call.Serve(req, g.deps.Calls.CallTimeout())
	defer cancel()
	if err := ctx.Err(); err != nil {
		return reasonpb.ErrUnavailable("inventory %s: the caller's deadline passed before the command ran", g.sku)
	}
	g.writes.Serve(ctx)
	return g.apply(ctx, gctx, d, cmd, reply)
}

// apply runs one command on the in-memory item (expiring what is due first) and
// answers it: a hold at once, a fact through the write pipeline, which sends the
// answer once everything the command observed is durable; ctx bounds a load and
// the command's lookups. The generated code answers a returned error at once:
// only a failure to load returns one.
func (g *grain) apply(ctx context.Context, gctx cluster.GrainContext, d durability, cmd func(context.Context, *Item) (bool, error),
	reply func(*inventorypb.StockLevel) any) error {
	if g.item == nil {
		if err := g.load(ctx); err != nil {
			return grainerr.Unexpected(g.log, fmt.Errorf("inventory %s: load: %w", g.sku, err))
		}
	}
	g.item.Expire(g.deps.Now()) // holds: written with the next fact, if at all
	changed, err := cmd(ctx, g.item)
	var answer any
	switch {
	case err != nil:
		answer = g.toGrainError(err)
	case reply != nil:
		answer = reply(g.levelProto())
	default:
		answer = g.levelProto()
	}
	if d == hold {
		g.writes.Answer(gctx, answer)
		if changed {
			g.armTimer()
		}
		return nil
	}
	if g.writes.Submit(gctx, changed, answer) {
		g.startWrite(gctx)
	}
	return nil
}

// retryLoad makes the grain try to load again soon on its own timer.
func (g *grain) retryLoad() {
	if g.timer != nil {
		g.timer()
	}
	g.timer, g.timerAt = g.sched.SendOnce(reloadRetry, g.self, &expireTick{}), time.Now().Add(reloadRetry)
}

// startWrite writes the current state, fenced on the durable version: in the
// background with group commit (the answer comes back as durable.Done), inline
// without (durable.Pipeline.Write).
func (g *grain) startWrite(ctx cluster.GrainContext) {
	version := g.writes.Begin()
	state, err := proto.Marshal(toProto(g.item.Record()))
	level := g.item.Level()
	change := g.item.TakeChange()
	g.writtenLevel = level
	if done, err := g.writes.Write(g.root, g.self, g.deps.GroupCommit, g.deps.StoreTimeout, func(ctx context.Context) error {
		if err != nil {
			return err
		}
		return g.deps.Store.SaveInventory(ctx, g.sku, version, state, level, change)
	}); done {
		g.writeDone(ctx, err)
	}
}

func (g *grain) writeDone(ctx cluster.GrainContext, err error) {
	again, failed := g.writes.Finish(ctx, err, func(err error) error {
		// Logged at error level there when it is not transient (a bug).
		return grainerr.Unexpected(g.log, fmt.Errorf("inventory %s: write: %w", g.sku, err))
	})
	if failed {
		switch {
		case errors.Is(err, snapshot.ErrStale):
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.writes.Version())
		case grainerr.Transient(err):
			g.log.Warn("snapshot write failed; reloading", "err", err)
		}
		g.item = nil
		// Reload soon even if no command comes, so due reservations still expire.
		g.retryLoad()
		return
	}
	if g.deps.OnLevel != nil && g.writtenLevel != g.durableLevel {
		g.deps.OnLevel(g.sku, g.durableLevel, g.writtenLevel)
	}
	g.durableLevel = g.writtenLevel
	// No write is in flight now: everything but the changes made since the
	// write began is durable, and memory may drop it.
	g.item.Compact(g.deps.Now())
	if again {
		g.startWrite(ctx)
	}
	g.armTimer()
}

func (g *grain) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	snap, err := g.deps.Store.LoadInventory(ctx, g.sku)
	if err != nil {
		return err
	}
	item := &Item{}
	if snap.Version > 0 {
		var st inventorypb.InventoryState
		if err := proto.Unmarshal(snap.State, &st); err != nil {
			return fmt.Errorf("decode snapshot v%d: %w", snap.Version, err)
		}
		if len(st.Sales) > 0 {
			// Stores move these to the ledger when they open (migration 8).
			return fmt.Errorf("snapshot v%d carries its sales inside: the store's migrations have not run", snap.Version)
		}
		// Only the recent sales: an older one is looked up when a command names
		// its order (knowSale).
		from := g.deps.Now().Add(-LedgerWindow)
		recent, err := g.deps.Store.InventorySales(ctx, g.sku, from)
		if err != nil {
			return err
		}
		s := fromProto(&st)
		s.Sales, s.SalesFrom = recent, from
		if item, err = FromSnapshot(s); err != nil {
			return err
		}
		if !st.ReceiptsKept {
			item.RewriteReceipts()
		}
	}
	g.item = item
	g.durableLevel = item.Level()
	g.writes.Reset(snap.Version)
	g.armTimer()
	return nil
}

// armTimer schedules the grain's next expiry check at its earliest reservation,
// unless the check already armed comes no later.
func (g *grain) armTimer() {
	if g.item == nil {
		return
	}
	next, ok := g.item.NextExpiry()
	if !ok || (g.timer != nil && !g.timerAt.After(next)) {
		return
	}
	if g.timer != nil {
		g.timer()
	}
	g.timer, g.timerAt = g.sched.SendOnce(max(time.Until(next), time.Millisecond), g.self, &expireTick{}), next
}

func (g *grain) levelProto() *inventorypb.StockLevel {
	l := g.item.Level()
	return &inventorypb.StockLevel{Sku: g.sku, Available: l.Available, Reserved: l.Reserved, Sold: l.Sold, Received: l.Received}
}

func (g *grain) toGrainError(err error) error {
	switch {
	case errors.Is(err, ErrOutOfStock):
		return reasonpb.ErrOutOfStock("%v", err)
	case errors.Is(err, ErrReservationMissing):
		return reasonpb.ErrNotFound("%v", err)
	case errors.Is(err, ErrInvalidQuantity):
		return reasonpb.ErrInvalid("%v", err)
	case errors.Is(err, ErrReceiptChanged):
		return reasonpb.ErrIdempotencyMismatch("this delivery was already received with a different quantity")
	case errors.Is(err, ErrQuantityChanged):
		return reasonpb.ErrIdempotencyMismatch("%v", err)
	default:
		return grainerr.Unexpected(g.log, err)
	}
}

// SplitSnapshotSales reads a snapshot of the layout from before the sales ledger
// had a table of its own: the sales it carries, and the snapshot without them
// (nil sales: it carries none). The stores' migration 8 moves them to the ledger.
func SplitSnapshotSales(state []byte) (sales map[string]int64, rest []byte, err error) {
	var st inventorypb.InventoryState
	if err := proto.Unmarshal(state, &st); err != nil {
		return nil, nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if len(st.Sales) == 0 {
		return nil, nil, nil
	}
	sales, st.Sales = st.Sales, nil
	if rest, err = proto.Marshal(&st); err != nil {
		return nil, nil, err
	}
	return sales, rest, nil
}

func toProto(s Snapshot) *inventorypb.InventoryState {
	// The ledgers are stored beside the snapshot, not in it: every sale, and
	// every receipt (the snapshot keeps only the most recent receipts).
	st := &inventorypb.InventoryState{
		Received: s.Received, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold, ReceiptsKept: true,
	}
	for _, r := range s.RecentReceipts {
		st.Receipts = append(st.Receipts, &inventorypb.Receipt{RequestId: r.RequestID, Quantity: r.Quantity})
		// The ids alone as well, for a member still running the previous release.
		st.RecentReceipts = append(st.RecentReceipts, r.RequestID)
	}
	for _, r := range s.Reservations {
		st.Reservations = append(st.Reservations, &inventorypb.Reservation{
			OrderId: r.OrderID, Quantity: r.Quantity, ExpiresAt: timestamppb.New(r.ExpiresAt),
		})
	}
	return st
}

func fromProto(st *inventorypb.InventoryState) Snapshot {
	s := Snapshot{
		Level: Level{Available: st.Available, Reserved: st.Reserved, Sold: st.Sold, Received: st.Received},
	}
	for _, r := range st.Receipts {
		s.RecentReceipts = append(s.RecentReceipts, Receipt{RequestID: r.RequestId, Quantity: r.Quantity})
	}
	if len(st.Receipts) == 0 {
		// A snapshot from before quantities were kept: the ids, quantity unknown.
		for _, id := range st.RecentReceipts {
			s.RecentReceipts = append(s.RecentReceipts, Receipt{RequestID: id})
		}
	}
	for _, r := range st.Reservations {
		s.Reservations = append(s.Reservations, Reservation{OrderID: r.OrderId, Quantity: r.Quantity, ExpiresAt: r.ExpiresAt.AsTime()})
	}
	return s
}
