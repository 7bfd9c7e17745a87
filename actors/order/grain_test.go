package order_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/cluster/member"
	"phoneshop/fault"
	"phoneshop/grain/call"
	"phoneshop/internal/shoptest"
	"phoneshop/notify/outbox"
	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// deadlines records the deadline of the last store write of each kind.
type deadlines struct {
	mu   sync.Mutex
	last map[string]time.Time // by kind; zero: a write without deadline
}

func (d *deadlines) record(ctx context.Context, kind string) {
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = map[string]time.Time{}
	}
	d.last[kind] = dl
}

func (d *deadlines) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = nil
}

func (d *deadlines) of(kind string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl, ok := d.last[kind]
	return dl, ok
}

// faultyOrders is the order store with switches to make it fail.
type faultyOrders struct {
	order.Store
	deadlines *deadlines
	// refuseConfirmed refuses this many saves of a confirmed order (a store outage).
	refuseConfirmed atomic.Int32
	// staleSaves makes every save fail as fenced off, as if another activation had
	// moved on; failLoads makes every load fail.
	staleSaves, failLoads atomic.Bool
	// winnerFirst makes another activation save the order's "committing" just
	// before this activation's save of it, which then loses the fenced race.
	winnerFirst atomic.Bool
	// refusedStale and failedLoads count what the switches refused.
	refusedStale, failedLoads atomic.Int64
}

func (s *faultyOrders) LoadOrder(ctx context.Context, id string) (snapshot.Snapshot, error) {
	if s.failLoads.Load() {
		s.failedLoads.Add(1)
		return snapshot.Snapshot{}, fault.Unavailable(errors.New("store unreachable"))
	}
	return s.Store.LoadOrder(ctx, id)
}

func (s *faultyOrders) SaveOrder(ctx context.Context, version int64, state []byte, row order.Row, events []outbox.Event) error {
	s.deadlines.record(ctx, "order")
	if s.staleSaves.Load() {
		s.refusedStale.Add(1)
		return snapshot.ErrStale
	}
	if row.Status == order.StatusConfirmed && s.refuseConfirmed.Add(-1) >= 0 {
		return fault.Unavailable(context.DeadlineExceeded)
	}
	if row.Status == order.StatusCommitting && s.winnerFirst.CompareAndSwap(true, false) {
		if err := s.Store.SaveOrder(ctx, version, state, row, events); err != nil {
			return err
		}
	}
	return s.Store.SaveOrder(ctx, version, state, row, events)
}

// faultyStock is the inventory store; it refuses the first commits it is told to
// (as an outage: a retry cures it), or every commit while breakCommits is set (with
// an error nobody classified: no retry cures it).
type faultyStock struct {
	inventory.Store
	deadlines     *deadlines
	refuseCommits atomic.Int32
	breakCommits  atomic.Bool
}

func (s *faultyStock) SaveInventory(ctx context.Context, sku string, v int64, state []byte, l inventory.Level, sales inventory.LedgerChange) error {
	s.deadlines.record(ctx, "inventory")
	if len(sales.Added) > 0 && s.refuseCommits.Add(-1) >= 0 {
		return fault.Unavailable(errors.New("inventory store busy"))
	}
	if len(sales.Added) > 0 && s.breakCommits.Load() {
		return errors.New("inventory store: a row that breaks a constraint")
	}
	return s.Store.SaveInventory(ctx, sku, v, state, l, sales)
}

// recordedCarts is the cart store; it records the deadlines of its writes, and
// fails the writes of emptied carts while loseEmptied is set.
type recordedCarts struct {
	cart.Store
	deadlines   *deadlines
	loseEmptied atomic.Bool
	lost        atomic.Int32
}

func (s *recordedCarts) SaveCart(ctx context.Context, accountID string, version int64, state []byte) error {
	s.deadlines.record(ctx, "cart")
	var st cartpb.CartState
	if err := proto.Unmarshal(state, &st); err != nil {
		return err
	}
	if len(st.Lines) == 0 && s.loseEmptied.Load() {
		s.lost.Add(1)
		return fault.Unavailable(errors.New("cart store away"))
	}
	return s.Store.SaveCart(ctx, accountID, version, state)
}

// oneVariant is a catalog that sells every SKU at 100 cents.
type oneVariant struct{}

func (oneVariant) Variants(_ context.Context, skus []string) (map[string]cart.Variant, error) {
	out := make(map[string]cart.Variant, len(skus))
	for _, sku := range skus {
		out[sku] = cart.Variant{SKU: sku, PhoneID: "p-" + sku, Name: "Phone " + sku, PriceCents: 100}
	}
	return out, nil
}

type sagaHarness struct {
	parked    atomic.Int32 // sagas parked (order.Deps.Parked)
	db        *sqlstore.Store
	carts     *recordedCarts
	orders    *faultyOrders
	stock     *faultyStock
	deadlines *deadlines
	c         *cluster.Cluster
}

// startSaga starts one member hosting cart, inventory and order grains on SQLite,
// behind the switchable stores.
func startSaga(t *testing.T, opts ...func(*member.Deps)) *sagaHarness {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dls := &deadlines{}
	h := &sagaHarness{db: db, orders: &faultyOrders{Store: db, deadlines: dls}, stock: &faultyStock{Store: db, deadlines: dls}, deadlines: dls,
		carts: &recordedCarts{Store: db, deadlines: dls}}
	log := shoptest.Logger()
	deps := member.Deps{
		Inventory: inventory.Deps{Store: h.stock, ReservationTTL: func() time.Duration { return time.Minute },
			Now: time.Now, StoreTimeout: 5 * time.Second, GroupCommit: true, Logger: log},
		Order: order.Deps{Store: h.orders, Calls: call.DefaultPolicy(), Now: time.Now, StoreTimeout: 5 * time.Second, Logger: log,
			Parked: func() { h.parked.Add(1) }},
		Cart: cart.Deps{Store: h.carts, Catalog: oneVariant{},
			MaxLineQuantity: func() int64 { return 10 }, Currency: "USD", Calls: call.DefaultPolicy(),
			StoreTimeout: 5 * time.Second, Now: time.Now, Logger: log},
	}
	for _, o := range opts {
		o(&deps)
	}
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: log}, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	h.c = m.Cluster()
	return h
}

var opt = cluster.WithTimeout(5 * time.Second)

// stocked receives qty units of sku.
func (h *sagaHarness) stocked(t *testing.T, sku string, qty int64) {
	t.Helper()
	if _, err := inventorypb.GetInventoryGrainClient(h.c, sku).Receive(&inventorypb.ReceiveRequest{RequestId: "d1", Quantity: qty}, opt); err != nil {
		t.Fatal(err)
	}
}

func (h *sagaHarness) level(t *testing.T, sku string) *inventorypb.StockLevel {
	t.Helper()
	l, err := inventorypb.GetInventoryGrainClient(h.c, sku).Level(&inventorypb.LevelRequest{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// place places an order of qty units of sku for acc-1 and returns the grain's answer.
func (h *sagaHarness) place(id, sku string, qty int64) error {
	_, err := orderpb.GetOrderGrainClient(h.c, id).Place(&orderpb.PlaceRequest{
		AccountId: "acc-1", RequestHash: "h", Currency: "USD",
		Lines:           []*orderpb.OrderLine{{Sku: sku, Quantity: qty, UnitPriceCents: 100}},
		ShippingAddress: &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"},
	}, opt)
	return err
}

// placeUnfinished places an order of qty units of sku and expects it to be
// answered UNAVAILABLE: a step of its saga failed.
func (h *sagaHarness) placeUnfinished(t *testing.T, id, sku string, qty int64) {
	t.Helper()
	if err := h.place(id, sku, qty); !reasonpb.IsUnavailable(err) {
		t.Fatalf("place with a failing step = %v, want reason UNAVAILABLE", err)
	}
}

// waitStored waits until the store holds the order in status, reading the store
// only: no call reaches the order grain meanwhile.
func (h *sagaHarness) waitStored(t *testing.T, id string, status order.Status) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		snap, err := h.db.LoadOrder(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		o, err := order.Decode(snap.State)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is still %q in the store, want %q", id, o.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStuckSagaFinishesOnItsOwn: an order left "committing" by a failed step
// confirms on the grain's own timer once the failure heals, without anyone calling
// the order grain again.
func TestStuckSagaFinishesOnItsOwn(t *testing.T) {
	tests := []struct {
		name   string
		breaks func(h *sagaHarness)
	}{
		{"inventory_refuses_the_first_two_commits", func(h *sagaHarness) { h.stock.refuseCommits.Store(2) }},
		{"order_store_refuses_the_first_confirmed_save", func(h *sagaHarness) { h.orders.refuseConfirmed.Store(1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startSaga(t)
			h.stocked(t, "sku-1", 10)
			tc.breaks(h)
			id := order.ID("acc-1", "k-"+tc.name)
			h.placeUnfinished(t, id, "sku-1", 3)
			h.waitStored(t, id, order.StatusConfirmed)
			if l := h.level(t, "sku-1"); l.Available != 7 || l.Reserved != 0 || l.Sold != 3 {
				t.Fatalf("level after the saga finished = %v; want 7 available, 3 sold", l)
			}
		})
	}
}

// TestFencedLoserKeepsTheWinnersReservations: an activation whose save of
// "committing" loses to another activation of the same order releases nothing:
// the reservations under the order's id are the winner's, and the order goes on
// to confirm.
func TestFencedLoserKeepsTheWinnersReservations(t *testing.T) {
	h := startSaga(t)
	h.stocked(t, "sku-1", 10)
	h.orders.winnerFirst.Store(true)
	id := order.ID("acc-1", "k-fenced")
	h.placeUnfinished(t, id, "sku-1", 3)
	if l := h.level(t, "sku-1"); l.Available != 7 || l.Reserved+l.Sold != 3 {
		t.Fatalf("level after the lost race = %v; want the winner's 3 units still held", l)
	}
	h.waitStored(t, id, order.StatusConfirmed)
	if l := h.level(t, "sku-1"); l.Available != 7 || l.Sold != 3 {
		t.Fatalf("level after the order confirmed = %v; want 7 available, 3 sold", l)
	}
}

// TestGetAfterAFailedReloadAnswersUnavailable: when a fenced save is followed by a
// reload that fails, the grain holds no order; a read then answers UNAVAILABLE
// (never a crash), and the order is served again once the store heals.
func TestGetAfterAFailedReloadAnswersUnavailable(t *testing.T) {
	h := startSaga(t)
	h.stocked(t, "sku-1", 10)
	h.stock.refuseCommits.Store(1)
	id := order.ID("acc-1", "k-reload")
	h.placeUnfinished(t, id, "sku-1", 3)

	h.orders.staleSaves.Store(true)
	h.orders.failLoads.Store(true)
	client := orderpb.GetOrderGrainClient(h.c, id)
	get := func() (*orderpb.OrderView, error) {
		return client.Get(&orderpb.GetOrderRequest{AccountId: "acc-1"}, opt)
	}
	if view, err := get(); err != nil && !reasonpb.IsUnavailable(err) {
		t.Fatalf("get while saves are fenced off = %v, %v; want the order or reason UNAVAILABLE", view, err)
	}
	// Wait until the saga's retry lost a save and failed to reload.
	deadline := time.Now().Add(15 * time.Second)
	for h.orders.refusedStale.Load() == 0 || h.orders.failedLoads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no fenced save and failed reload within 15s (%d fenced, %d failed loads)",
				h.orders.refusedStale.Load(), h.orders.failedLoads.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if view, err := get(); !reasonpb.IsUnavailable(err) {
		t.Fatalf("get after a failed reload = %v, %v; want reason UNAVAILABLE", view, err)
	}

	h.orders.staleSaves.Store(false)
	h.orders.failLoads.Store(false)
	h.waitStored(t, id, order.StatusConfirmed)
	view, err := get()
	if err != nil || view.Order.Status != string(order.StatusConfirmed) {
		t.Fatalf("get after the store healed = %v, %v; want confirmed", view, err)
	}
}

// TestCheckoutDeadlineBoundsEveryHop: the deadline a checkout carries bounds the
// store writes of every grain it reaches (cart -> order -> inventory), though each
// grain's own timeouts are longer.
func TestCheckoutDeadlineBoundsEveryHop(t *testing.T) {
	h := startSaga(t)
	h.stocked(t, "sku-1", 10)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	h.deadlines.reset()
	// Well inside the 5 s grain-call and store timeouts, so that a hop that drops
	// the deadline shows.
	deadline := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	view, err := shopper.Checkout(&cartpb.CheckoutRequest{OrderId: order.ID("acc-1", "k-deadline"), RequestHash: "h",
		ShippingAddress: &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"},
		DeadlineUnixMs:  deadline.UnixMilli()}, opt)
	if err != nil || view.Order.Status != string(order.StatusConfirmed) {
		t.Fatalf("checkout = %v, %v; want confirmed", view, err)
	}
	// The emptied cart is written after the answer, on a deadline of its own
	// (actors/cart: empty); the writes the answer waits for end by its deadline.
	for _, kind := range []string{"inventory", "order"} {
		t.Run(kind+"_write_ends_by_the_checkouts_deadline", func(t *testing.T) {
			got, ok := h.deadlines.of(kind)
			if !ok {
				t.Fatalf("no %s write during the checkout", kind)
			}
			if got.IsZero() || got.After(deadline) {
				t.Fatalf("%s write had deadline %v, want one by the checkout's %v", kind, got, deadline)
			}
		})
	}
}

// TestALostEmptiedCartEmptiesItselfFromItsOrder: the checkout is answered before
// the emptied cart is durable. When that write is lost, the cart still holds the
// bought lines in the store, at the revision the confirmed order was placed from:
// the cart empties itself again when it loads, and a cart changed since keeps its
// lines.
func TestALostEmptiedCartEmptiesItselfFromItsOrder(t *testing.T) {
	h := startSaga(t)
	h.stocked(t, "sku-1", 10)
	shopper := cartpb.GetCartGrainClient(h.c, "acc-1")
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 2}, opt); err != nil {
		t.Fatal(err)
	}
	h.carts.loseEmptied.Store(true)
	addr := &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"}
	view, err := shopper.Checkout(&cartpb.CheckoutRequest{OrderId: order.ID("acc-1", "k-lost"), RequestHash: "h", ShippingAddress: addr}, opt)
	if err != nil || view.Order.Status != string(order.StatusConfirmed) {
		t.Fatalf("checkout = %v, %v; want confirmed", view, err)
	}
	// The shopper's next look notices the lost write; the cart reloads the
	// bought lines from the store, empties itself from the order, and cannot
	// write that either while the store is away.
	if _, err := shopper.Get(&cartpb.GetCartRequest{}, opt); !reasonpb.IsUnavailable(err) {
		t.Fatalf("cart while its writes fail: %v; want unavailable", err)
	}
	if h.carts.lost.Load() != 2 {
		t.Fatalf("%d emptied carts lost; want 2 (after the checkout, then at the reload)", h.carts.lost.Load())
	}
	h.carts.loseEmptied.Store(false)
	snap, err := h.db.LoadCart(context.Background(), "acc-1")
	if err != nil {
		t.Fatal(err)
	}
	var st cartpb.CartState
	if err := proto.Unmarshal(snap.State, &st); err != nil || len(st.Lines) != 1 {
		t.Fatalf("stored cart = %v, %v; want the bought line still there", &st, err)
	}
	// The store is back: the next load empties the cart from its order.
	got, err := shopper.Get(&cartpb.GetCartRequest{}, opt)
	if err != nil || len(got.Lines) != 0 {
		t.Fatalf("cart = %v, %v; want empty", got, err)
	}
	// Once it is written, a cart filled again keeps its new lines at every load.
	if _, err := shopper.SetLine(&cartpb.SetLineRequest{Sku: "sku-1", Quantity: 1}, opt); err != nil {
		t.Fatal(err)
	}
	snap, err = h.db.LoadCart(context.Background(), "acc-1")
	if err != nil {
		t.Fatal(err)
	}
	st.Reset()
	if err := proto.Unmarshal(snap.State, &st); err != nil || len(st.Lines) != 1 || st.Lines[0].Quantity != 1 || st.Revision < 3 {
		t.Fatalf("stored cart = %v, %v; want the new line at a later revision", &st, err)
	}
	last, err := h.db.CartCheckedOut(context.Background(), "acc-1")
	if err != nil || last.OrderID != order.ID("acc-1", "k-lost") || last.Revision >= st.Revision {
		t.Fatalf("last checkout = %+v, %v; want the order, placed from an older revision than %d", last, err, st.Revision)
	}
}

// TestAGrainThatFindsNoOrderStops: a read or command for an id that names no order
// is answered NOT_FOUND, and the activation it caused stops at once instead of
// staying for the idle timeout (a minute here).
func TestAGrainThatFindsNoOrderStops(t *testing.T) {
	h := startSaga(t)
	kind := h.c.GetClusterKind(order.KindName)
	for i := range 20 {
		client := orderpb.GetOrderGrainClient(h.c, order.ID("acc-1", fmt.Sprintf("made-up-%d", i)))
		var err error
		if i%2 == 0 {
			_, err = client.Get(&orderpb.GetOrderRequest{AccountId: "acc-1"}, opt)
		} else {
			_, err = client.Cancel(&orderpb.OrderCommand{AccountId: "acc-1"}, opt)
		}
		if !reasonpb.IsNotFound(err) {
			t.Fatalf("call %d for an order that does not exist = %v, want reason NOT_FOUND", i, err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for kind.Count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d order grains still active 15s after answering NOT_FOUND (idle timeout: a minute)", kind.Count())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A placed order's grain stays.
	h.stocked(t, "sku-1", 10)
	id := order.ID("acc-1", "k-stays")
	if err := h.place(id, "sku-1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := orderpb.GetOrderGrainClient(h.c, id).Get(&orderpb.GetOrderRequest{AccountId: "acc-1"}, opt); err != nil {
		t.Fatal(err)
	}
	if n := kind.Count(); n != 1 {
		t.Errorf("order grains active after a placed order was read = %d, want 1", n)
	}
}

// TestASagaThatFailsForGoodIsParked: a saga whose step keeps failing for a reason
// no retry cures stops retrying and rests in needs_attention, where its cause is
// kept; once ops fixed the cause, a resume with Unpark finishes it.
func TestASagaThatFailsForGoodIsParked(t *testing.T) {
	h := startSaga(t)
	h.stocked(t, "sku-1", 10)
	h.stock.breakCommits.Store(true)
	id := order.ID("acc-1", "k-parked")
	client := orderpb.GetOrderGrainClient(h.c, id)
	if err := h.place(id, "sku-1", 3); err == nil {
		t.Fatal("place with a broken inventory store succeeded")
	}
	h.waitStored(t, id, order.StatusNeedsAttention)
	snap, err := h.db.LoadOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.Decode(snap.State)
	if err != nil {
		t.Fatal(err)
	}
	if o.ParkedFrom != order.StatusCommitting || !strings.Contains(o.Attention, "breaks a constraint") {
		t.Errorf("parked order: from %q because %q; want from committing, with the store's error", o.ParkedFrom, o.Attention)
	}
	// The hook is told after the parked order's write, which the wait above saw.
	for deadline := time.Now().Add(15 * time.Second); h.parked.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.parked.Load(); n != 1 {
		t.Errorf("parked hook told %d times, want 1", n)
	}
	// Parked means resting: no timer runs the saga again.
	version := snap.Version
	time.Sleep(2 * time.Second) // several backoffs of the saga's timer (100ms, doubling)
	if snap, err := h.db.LoadOrder(context.Background(), id); err != nil || snap.Version != version {
		t.Fatalf("the parked order was written again (version %d -> %d, %v)", version, snap.Version, err)
	}

	h.stock.breakCommits.Store(false)
	view, err := client.Resume(&orderpb.ResumeRequest{Unpark: true}, opt)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if view.Order.Status != string(order.StatusConfirmed) || view.Order.ParkedFrom != "" || view.Order.Attention != "" {
		t.Fatalf("after the resume the order is %s (parked from %q: %q), want confirmed", view.Order.Status, view.Order.ParkedFrom, view.Order.Attention)
	}
	if l := h.level(t, "sku-1"); l.Available != 7 || l.Sold != 3 || l.Reserved != 0 {
		t.Fatalf("level after the resumed order = %v; want 7 available, 3 sold", l)
	}
}
