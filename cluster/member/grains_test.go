package member_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/order"
	"phoneshop/config"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/orderpb"
	"phoneshop/protos/reasonpb"
)

// TestGrains runs the grain scenarios on one member, under the race detector.
func TestGrains(t *testing.T) { grainScenarios(t, 1) }

// TestGrainsWithoutGroupCommit runs them with every change written before the next
// command is taken.
func TestGrainsWithoutGroupCommit(t *testing.T) {
	grainScenarios(t, 1, func(c *config.Dev) { c.GroupCommit = false })
}

// TestClusterGrains runs them on three members, where callers and grains sit on
// different members and every call crosses the wire.
func TestClusterGrains(t *testing.T) {
	shoptest.MultiMember(t)
	grainScenarios(t, 3)
}

// TestClusterActivationsSpreadOverMembers: identities are placed on every member.
func TestClusterActivationsSpreadOverMembers(t *testing.T) {
	shoptest.MultiMember(t)
	h := shoptest.Start(t, 3)
	c := h.Shop.Members[0].Cluster()
	const carts = 90
	for i := range carts {
		client := cartpb.GetCartGrainClient(c, fmt.Sprintf("acc_spread_%d", i))
		if _, err := client.Get(&cartpb.GetCartRequest{}, cluster.WithTimeout(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, m := range h.Shop.Members {
		n := m.ActivationCounts()["cart"]
		total += n
		if n < carts/10 {
			t.Errorf("member %d hosts %d of %d carts; want at least %d", i, n, carts, carts/10)
		}
	}
	if total != carts {
		t.Errorf("%d cart activations in all, want %d (one per identity)", total, carts)
	}
}

func grainScenarios(t *testing.T, members int, options ...shoptest.Option) {
	h := shoptest.Start(t, members, options...)
	// Callers use the last member, so that with several members most grains are remote.
	c := h.Shop.Members[len(h.Shop.Members)-1].Cluster()
	opts := func() []cluster.GrainCallOption {
		return []cluster.GrainCallOption{cluster.WithTimeout(5 * time.Second)}
	}
	skus := shoptest.SoldOutSKUs(t, 2)

	level := func(t *testing.T, sku string) *inventorypb.StockLevel {
		t.Helper()
		l, err := inventorypb.GetInventoryGrainClient(c, sku).Level(&inventorypb.LevelRequest{}, opts()...)
		if err != nil {
			t.Fatal(err)
		}
		if l.Available+l.Reserved+l.Sold != l.Received {
			t.Fatalf("conservation broken: %v", l)
		}
		return l
	}
	want := func(t *testing.T, sku string, available, reserved, sold, received int64) {
		t.Helper()
		l := level(t, sku)
		if l.Available != available || l.Reserved != reserved || l.Sold != sold || l.Received != received {
			t.Fatalf("%s = %d/%d/%d/%d (available/reserved/sold/received), want %d/%d/%d/%d", sku,
				l.Available, l.Reserved, l.Sold, l.Received, available, reserved, sold, received)
		}
	}

	t.Run("retried_inventory_commands_take_effect_once", func(t *testing.T) {
		inv := inventorypb.GetInventoryGrainClient(c, skus[0])
		for range 2 {
			if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "delivery-1", Quantity: 10}, opts()...); err != nil {
				t.Fatal(err)
			}
		}
		want(t, skus[0], 10, 0, 0, 10)
		for range 2 {
			if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "ord_retry", Quantity: 3}, opts()...); err != nil {
				t.Fatal(err)
			}
		}
		want(t, skus[0], 7, 3, 0, 10)
		for range 2 {
			if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: "ord_retry"}, opts()...); err != nil {
				t.Fatal(err)
			}
		}
		want(t, skus[0], 7, 0, 3, 10)
		for range 2 {
			if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: "ord_retry"}, opts()...); err != nil {
				t.Fatal(err)
			}
		}
		want(t, skus[0], 10, 0, 0, 10)
	})

	t.Run("reserve_beyond_available_is_out_of_stock_and_changes_nothing", func(t *testing.T) {
		_, err := inventorypb.GetInventoryGrainClient(c, skus[0]).Reserve(&inventorypb.ReserveRequest{OrderId: "ord_big", Quantity: 11}, opts()...)
		if !reasonpb.IsOutOfStock(err) {
			t.Fatalf("err = %v, want OUT_OF_STOCK", err)
		}
		want(t, skus[0], 10, 0, 0, 10)
	})

	t.Run("reservation_expires_on_the_grains_own_timer", func(t *testing.T) {
		inv := inventorypb.GetInventoryGrainClient(c, skus[0])
		// The shortest reservation the live setting allows, for this hold alone: a
		// hold keeps the TTL it was made with.
		ttl := h.Shop.Live.Value(config.KeyReservationTTL)
		if err := h.Shop.Live.Set(config.KeyReservationTTL, "1s"); err != nil {
			t.Fatal(err)
		}
		_, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "ord_ttl", Quantity: 4}, opts()...)
		if restore := h.Shop.Live.Set(config.KeyReservationTTL, ttl); err != nil || restore != nil {
			t.Fatal(err, restore)
		}
		// A hold reaches the store with the next fact: a sale and its return.
		for _, step := range []func() error{
			func() error {
				_, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: "ord_fact", Quantity: 1}, opts()...)
				return err
			},
			func() error {
				_, err := inv.Commit(&inventorypb.CommitRequest{OrderId: "ord_fact"}, opts()...)
				return err
			},
			func() error {
				_, err := inv.Return(&inventorypb.ReturnRequest{OrderId: "ord_fact"}, opts()...)
				return err
			},
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if vs, err := h.Shop.Store.VariantsBySKU(context.Background(), []string{skus[0]}); err != nil || vs[skus[0]].Available != 6 {
			t.Fatalf("stored level = %+v, %v; want the hold of 4 in it (6 available)", vs[skus[0]], err)
		}
		// Watch the level the grain records in the store, without calling the grain
		// (a call would expire the reservation itself): the timer expires the hold
		// and writes the level again.
		deadline := time.Now().Add(10 * time.Second)
		for {
			vs, err := h.Shop.Store.VariantsBySKU(context.Background(), []string{skus[0]})
			if err != nil {
				t.Fatal(err)
			}
			if vs[skus[0]].Available == 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reservation not expired by its timer: store says %d available", vs[skus[0]].Available)
			}
			time.Sleep(50 * time.Millisecond)
		}
		want(t, skus[0], 10, 0, 0, 10)
	})

	cart := cartpb.GetCartGrainClient(c, "acc_grain_test")
	address := &orderpb.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"}
	setLine := func(t *testing.T, sku string, qty int64) {
		t.Helper()
		if _, err := cart.SetLine(&cartpb.SetLineRequest{Sku: sku, Quantity: qty}, opts()...); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("checkout_with_a_short_line_reserves_nothing", func(t *testing.T) {
		setLine(t, skus[0], 2)
		setLine(t, skus[1], 1) // skus[1] has no stock
		_, err := cart.Checkout(&cartpb.CheckoutRequest{OrderId: order.ID("acc_grain_test", "k1"), RequestHash: "h1", ShippingAddress: address}, opts()...)
		if !reasonpb.IsOutOfStock(err) {
			t.Fatalf("err = %v, want OUT_OF_STOCK", err)
		}
		if got := cluster.FromError(err).Metadata["skus"]; got != skus[1] {
			t.Fatalf("short skus = %q, want %q", got, skus[1])
		}
		want(t, skus[0], 10, 0, 0, 10)
		want(t, skus[1], 0, 0, 0, 0)
		view, err := cart.Get(&cartpb.GetCartRequest{}, opts()...)
		if err != nil || len(view.Lines) != 2 {
			t.Fatalf("cart after a rejected checkout = %v, %v; want both lines kept", view, err)
		}
	})

	var orderID string
	t.Run("checkout_takes_stock_on_every_line_and_empties_the_cart", func(t *testing.T) {
		if _, err := inventorypb.GetInventoryGrainClient(c, skus[1]).Receive(&inventorypb.ReceiveRequest{RequestId: "d2", Quantity: 1}, opts()...); err != nil {
			t.Fatal(err)
		}
		orderID = order.ID("acc_grain_test", "k2")
		view, err := cart.Checkout(&cartpb.CheckoutRequest{OrderId: orderID, RequestHash: "h2", ShippingAddress: address}, opts()...)
		if err != nil {
			t.Fatal(err)
		}
		if view.Order.Status != "confirmed" || len(view.Order.Lines) != 2 || view.Replayed {
			t.Fatalf("order = %v", view)
		}
		want(t, skus[0], 8, 0, 2, 10)
		want(t, skus[1], 0, 0, 1, 1)
		if v, _ := cart.Get(&cartpb.GetCartRequest{}, opts()...); len(v.GetLines()) != 0 {
			t.Fatalf("cart not emptied: %v", v)
		}
		again, err := cart.Checkout(&cartpb.CheckoutRequest{OrderId: orderID, RequestHash: "h2", ShippingAddress: address}, opts()...)
		if err != nil || !again.Replayed || again.Order.Id != orderID {
			t.Fatalf("replay = %v, %v", again, err)
		}
		want(t, skus[0], 8, 0, 2, 10)
	})

	t.Run("cancel_returns_the_stock", func(t *testing.T) {
		view, err := orderpb.GetOrderGrainClient(c, orderID).Cancel(&orderpb.OrderCommand{AccountId: "acc_grain_test"}, opts()...)
		if err != nil || view.Order.Status != "cancelled" {
			t.Fatalf("cancel = %v, %v", view, err)
		}
		want(t, skus[0], 10, 0, 0, 10)
		want(t, skus[1], 1, 0, 0, 1)
	})

	t.Run("order_of_another_account_is_not_found", func(t *testing.T) {
		_, err := orderpb.GetOrderGrainClient(c, orderID).Get(&orderpb.GetOrderRequest{AccountId: "acc_someone_else"}, opts()...)
		if !reasonpb.IsNotFound(err) {
			t.Fatalf("err = %v, want NOT_FOUND", err)
		}
	})

	// crashedMidSaga builds, in the store, an order a crash interrupted after it
	// persisted "committing": its reservation is held, the commit never happened.
	crashedMidSaga := func(t *testing.T, account string) string {
		t.Helper()
		id := order.ID(account, "k1")
		if _, err := inventorypb.GetInventoryGrainClient(c, skus[0]).Reserve(&inventorypb.ReserveRequest{OrderId: id, Quantity: 1}, opts()...); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		st := &orderpb.OrderState{Id: id, AccountId: account, RequestHash: "h", Status: string(order.StatusCommitting),
			Currency: "USD", TotalCents: 100, CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now),
			ShippingAddress: address, Lines: []*orderpb.OrderLine{{Sku: skus[0], Quantity: 1, UnitPriceCents: 100}}}
		state, err := proto.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Shop.Store.SaveOrder(context.Background(), 0, state,
			order.Row{ID: id, AccountID: account, Status: order.StatusCommitting, TotalCents: 100, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("order_interrupted_mid_saga_resumes_from_its_snapshot", func(t *testing.T) {
		id := crashedMidSaga(t, "acc_crashed")
		view, err := orderpb.GetOrderGrainClient(c, id).Resume(&orderpb.ResumeRequest{}, opts()...)
		if err != nil || view.Order.Status != "confirmed" {
			t.Fatalf("resumed order = %v, %v; want confirmed", view, err)
		}
		want(t, skus[0], 9, 0, 1, 10)
	})

	t.Run("interrupted_order_activated_by_a_read_finishes_on_its_own", func(t *testing.T) {
		id := crashedMidSaga(t, "acc_crashed_read")
		// A read only activates the grain; the activation finishes the saga.
		view, err := orderpb.GetOrderGrainClient(c, id).Get(&orderpb.GetOrderRequest{AccountId: "acc_crashed_read"}, opts()...)
		if err != nil {
			t.Fatal(err)
		}
		if s := view.Order.Status; s != "committing" && s != "confirmed" {
			t.Fatalf("read of an interrupted order = %s, want committing or confirmed", s)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			snap, err := h.Shop.Store.LoadOrder(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			o, err := order.Decode(snap.State)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status == order.StatusConfirmed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("order still %s 10s after its activation", o.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		want(t, skus[0], 8, 0, 2, 10)
	})
}
