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
	"phoneshop/cluster/grainctx"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of inventory grains.
const KindName = "Inventory"

// Store persists inventory snapshots. SaveInventory is fenced: it succeeds only when
// the stored version is expectedVersion (0 = never saved) and then stores
// expectedVersion+1; otherwise it returns snapshot.ErrStale. It also records the
// item's level where the catalog can read it, in the same transaction.
type Store interface {
	LoadInventory(ctx context.Context, sku string) (snapshot.Snapshot, error)
	SaveInventory(ctx context.Context, sku string, expectedVersion int64, state []byte, level Level) error
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
	Logger       *slog.Logger
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
	deps    Deps
	sku     string
	log     *slog.Logger
	item    *Item // nil until loaded (again)
	version int64
	timer   scheduler.CancelFunc
	sched   *scheduler.TimerScheduler
	self    *actor.PID
}

func (g *grain) Init(ctx cluster.GrainContext) {
	g.deps = deps.Get(ctx.ActorSystem())
	g.sku = ctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "sku", g.sku)
	g.self = ctx.Self()
	g.sched = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
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
	if _, ok := ctx.Message().(*expireTick); !ok {
		return
	}
	if _, err := g.apply(func(it *Item) (bool, error) {
		return it.Expire(g.deps.Now()) > 0, nil
	}); err != nil {
		g.log.Warn("expiring reservations failed; retrying", "err", err)
		g.timer = g.sched.SendOnce(time.Second, g.self, &expireTick{})
	}
}

func (g *grain) Reserve(req *inventorypb.ReserveRequest, _ cluster.GrainContext) (*inventorypb.StockLevel, error) {
	ttl := g.deps.ReservationTTL()
	if req.TtlMs > 0 {
		ttl = time.Duration(req.TtlMs) * time.Millisecond
	}
	return g.apply(func(it *Item) (bool, error) {
		return it.Reserve(req.OrderId, req.Quantity, g.deps.Now(), ttl)
	})
}

func (g *grain) Commit(req *inventorypb.CommitRequest, _ cluster.GrainContext) (*inventorypb.StockLevel, error) {
	return g.apply(func(it *Item) (bool, error) { return it.Commit(req.OrderId) })
}

func (g *grain) Release(req *inventorypb.ReleaseRequest, _ cluster.GrainContext) (*inventorypb.StockLevel, error) {
	return g.apply(func(it *Item) (bool, error) { return it.Release(req.OrderId) })
}

func (g *grain) Return(req *inventorypb.ReturnRequest, _ cluster.GrainContext) (*inventorypb.StockLevel, error) {
	return g.apply(func(it *Item) (bool, error) { return it.Return(req.OrderId) })
}

func (g *grain) Receive(req *inventorypb.ReceiveRequest, _ cluster.GrainContext) (*inventorypb.StockLevel, error) {
	if req.RequestId == "" {
		return nil, reasonpb.ErrInvalid("receive needs a request id")
	}
	return g.apply(func(it *Item) (bool, error) { return it.Receive(req.RequestId, req.Quantity) })
}

func (g *grain) Level(*inventorypb.LevelRequest, cluster.GrainContext) (*inventorypb.StockLevel, error) {
	return g.apply(func(*Item) (bool, error) { return false, nil })
}

// apply runs one command: expire what is due, run cmd, and persist before replying
// when anything changed. When the save fails the in-memory state is dropped, so the
// next command starts from what is durable.
func (g *grain) apply(cmd func(*Item) (bool, error)) (*inventorypb.StockLevel, error) {
	if g.item == nil {
		if err := g.load(); err != nil {
			return nil, reasonpb.ErrUnavailable("inventory %s: %v", g.sku, err)
		}
	}
	expired := g.item.Expire(g.deps.Now()) > 0
	changed, err := cmd(g.item)
	if err != nil && !expired {
		return nil, toGrainError(err)
	}
	if changed || expired {
		if serr := g.save(); serr != nil {
			g.item = nil
			return nil, reasonpb.ErrUnavailable("inventory %s: %v", g.sku, serr)
		}
		g.armTimer()
	}
	if err != nil {
		return nil, toGrainError(err)
	}
	return g.levelProto(), nil
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
		if item, err = FromSnapshot(fromProto(&st)); err != nil {
			return err
		}
	}
	g.item, g.version = item, snap.Version
	g.armTimer()
	return nil
}

func (g *grain) save() error {
	state, err := proto.Marshal(toProto(g.item.Snapshot()))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	if err := g.deps.Store.SaveInventory(ctx, g.sku, g.version, state, g.item.Level()); err != nil {
		if errors.Is(err, snapshot.ErrStale) {
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.version)
		}
		return err
	}
	g.version++
	return nil
}

// armTimer schedules the grain's next expiry check at its earliest reservation.
func (g *grain) armTimer() {
	if g.timer != nil {
		g.timer()
		g.timer = nil
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
	st := &inventorypb.InventoryState{
		Received: s.Received, Available: s.Available, Reserved: s.Reserved, Sold: s.Sold,
		Sales: s.Sales, RecentReceipts: s.RecentReceipts,
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
