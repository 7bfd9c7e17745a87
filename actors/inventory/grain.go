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

	"phoneshop/actors/snapshot"
	"phoneshop/cluster/durable"
	"phoneshop/cluster/grainctx"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of inventory grains.
const KindName = "Inventory"

// Store persists inventory snapshots and their sales ledgers. SaveInventory is
// fenced: it succeeds only when the stored version is expectedVersion (0 = never
// saved) and then stores expectedVersion+1; otherwise it returns
// snapshot.ErrStale. In the same transaction it applies the ledger's changes
// (returned sales first, then added ones) and records the item's level where the
// catalog can read it.
type Store interface {
	LoadInventory(ctx context.Context, sku string) (snapshot.Snapshot, error)
	InventorySales(ctx context.Context, sku string) (map[string]int64, error)
	SaveInventory(ctx context.Context, sku string, expectedVersion int64, state []byte, level Level, sales SalesChange) error
}

// Deps is what an inventory grain needs from the member it runs on.
type Deps struct {
	Store Store
	// ReservationTTL is read at every reservation, so a configuration change
	// applies without a restart.
	ReservationTTL func() time.Duration
	Now            func() time.Time
	// StoreTimeout bounds one load or save.
	StoreTimeout time.Duration
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
	sched                      *scheduler.TimerScheduler
	self                       *actor.PID
	root                       *actor.RootContext
}

func (g *grain) Init(ctx cluster.GrainContext) {
	g.deps = deps.Get(ctx.ActorSystem())
	g.sku = ctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "sku", g.sku)
	g.self = ctx.Self()
	g.root = ctx.ActorSystem().Root
	g.sched = scheduler.NewTimerScheduler(g.root)
	if err := g.load(); err != nil {
		g.log.Error("load snapshot failed; will retry on the next command", "err", err)
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
		_ = g.apply(ctx, func(it *Item) (bool, error) {
			return it.Expire(g.deps.Now()) > 0, nil
		})
	}
}

func (g *grain) Reserve(req *inventorypb.ReserveRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	ttl := g.deps.ReservationTTL()
	if req.TtlMs > 0 {
		ttl = time.Duration(req.TtlMs) * time.Millisecond
	}
	return g.apply(ctx, func(it *Item) (bool, error) {
		return it.Reserve(req.OrderId, req.Quantity, g.deps.Now(), ttl)
	})
}

func (g *grain) Commit(req *inventorypb.CommitRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	return g.apply(ctx, func(it *Item) (bool, error) { return it.Commit(req.OrderId) })
}

func (g *grain) Release(req *inventorypb.ReleaseRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	return g.apply(ctx, func(it *Item) (bool, error) { return it.Release(req.OrderId) })
}

func (g *grain) Return(req *inventorypb.ReturnRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	return g.apply(ctx, func(it *Item) (bool, error) { return it.Return(req.OrderId) })
}

func (g *grain) Receive(req *inventorypb.ReceiveRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	if req.RequestId == "" {
		return reasonpb.ErrInvalid("receive needs a request id")
	}
	return g.apply(ctx, func(it *Item) (bool, error) { return it.Receive(req.RequestId, req.Quantity) })
}

func (g *grain) Level(_ *inventorypb.LevelRequest, _ func(*inventorypb.StockLevel), _ func(error), ctx cluster.GrainContext) error {
	return g.apply(ctx, func(*Item) (bool, error) { return false, nil })
}

// apply runs one command on the in-memory item (expiring what is due first) and
// hands its answer to the write pipeline, which sends it once everything the
// command observed is durable. The generated code answers a returned error at once:
// only a failure to load returns one.
func (g *grain) apply(ctx cluster.GrainContext, cmd func(*Item) (bool, error)) error {
	if g.item == nil {
		if err := g.load(); err != nil {
			return reasonpb.ErrUnavailable("inventory %s: %v", g.sku, err)
		}
	}
	expired := g.item.Expire(g.deps.Now()) > 0
	changed, err := cmd(g.item)
	var reply any = g.levelProto()
	if err != nil {
		reply = toGrainError(err)
	}
	if g.writes.Submit(ctx, changed || expired, reply) {
		g.startWrite(ctx)
	}
	return nil
}

// startWrite writes the current state, fenced on the durable version: in the
// background with group commit (the answer comes back as durable.Done), inline
// without.
func (g *grain) startWrite(ctx cluster.GrainContext) {
	version := g.writes.Begin()
	state, err := proto.Marshal(toProto(g.item.Snapshot()))
	level := g.item.Level()
	sales := g.item.TakeSalesChange()
	g.writtenLevel = level
	write := func() error {
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
		defer cancel()
		return g.deps.Store.SaveInventory(sctx, g.sku, version, state, level, sales)
	}
	if !g.deps.GroupCommit {
		g.writeDone(ctx, write())
		return
	}
	self, root := g.self, g.root
	go func() { root.Send(self, &durable.Done{Err: write()}) }()
}

func (g *grain) writeDone(ctx cluster.GrainContext, err error) {
	again, failed := g.writes.Finish(ctx, err, func(err error) error {
		return reasonpb.ErrUnavailable("inventory %s: write failed: %v", g.sku, err)
	})
	if failed {
		if errors.Is(err, snapshot.ErrStale) {
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.writes.Version())
		} else {
			g.log.Error("snapshot write failed; reloading", "err", err)
		}
		g.item = nil
		// Reload soon even if no command comes, so due reservations still expire.
		if g.timer != nil {
			g.timer()
		}
		g.timer = g.sched.SendOnce(time.Second, g.self, &expireTick{})
		return
	}
	if g.deps.OnLevel != nil && g.writtenLevel != g.durableLevel {
		g.deps.OnLevel(g.sku, g.durableLevel, g.writtenLevel)
	}
	g.durableLevel = g.writtenLevel
	if again {
		g.startWrite(ctx)
	}
	g.armTimer()
}

func (g *grain) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
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
		stored, err := g.deps.Store.InventorySales(ctx, g.sku)
		if err != nil {
			return err
		}
		s := fromProto(&st)
		// Snapshots written before the ledger had its own table carry the sales
		// themselves: keep them, and let the next write move them to the table.
		legacy := s.Sales
		s.Sales = stored
		for id, q := range legacy {
			if _, ok := stored[id]; ok {
				delete(legacy, id)
				continue
			}
			s.Sales[id] = q
		}
		if item, err = FromSnapshot(s); err != nil {
			return err
		}
		item.MarkUnwritten(legacy)
	}
	g.item = item
	g.durableLevel = item.Level()
	g.writes.Reset(snap.Version)
	g.armTimer()
	return nil
}

// armTimer schedules the grain's next expiry check at its earliest reservation.
func (g *grain) armTimer() {
	if g.timer != nil {
		g.timer()
		g.timer = nil
	}
	if g.item == nil {
		return
	}
	next, ok := g.item.NextExpiry()
	if !ok {
		return
	}
	g.timer = g.sched.SendOnce(max(time.Until(next), time.Millisecond), g.self, &expireTick{})
}

func (g *grain) levelProto() *inventorypb.StockLevel {
	l := g.item.Level()
	return &inventorypb.StockLevel{Sku: g.sku, Available: l.Available, Reserved: l.Reserved, Sold: l.Sold, Received: l.Received}
}

func toGrainError(err error) error {
	switch {
	case errors.Is(err, ErrOutOfStock):
		return reasonpb.ErrOutOfStock("%v", err)
	case errors.Is(err, ErrReservationMissing):
		return reasonpb.ErrNotFound("%v", err)
	case errors.Is(err, ErrInvalidQuantity), errors.Is(err, ErrQuantityChanged):
		return reasonpb.ErrInvalid("%v", err)
	default:
		return reasonpb.ErrUnavailable("%v", err)
	}
}

func toProto(s Snapshot) *inventorypb.InventoryState {
	// The sales ledger is stored beside the snapshot, not in it.
	st := &inventorypb.InventoryState{
		Received: s.Received, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold,
		RecentReceipts: s.RecentReceipts,
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
		Level:          Level{Available: st.Available, Reserved: st.Reserved, Sold: st.Sold, Received: st.Received},
		Sales:          st.Sales,
		RecentReceipts: st.RecentReceipts,
	}
	for _, r := range st.Reservations {
		s.Reservations = append(s.Reservations, Reservation{OrderID: r.OrderId, Quantity: r.Quantity, ExpiresAt: r.ExpiresAt.AsTime()})
	}
	return s
}
