package member_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/config"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/cartpb"
)

// TestActivatorForgetsPassivatedGrainsAndKeepsActiveOnes: more than a thousand carts
// activate, all but a few that keep being called passivate, and the activator makes
// its map again for those few (cluster/member/placement.go). The few keep their one
// activation and their state throughout (a lost entry would activate a second one),
// and a passivated cart activates again, from its snapshot, when called.
func TestActivatorForgetsPassivatedGrainsAndKeepsActiveOnes(t *testing.T) {
	const idle = 8 * time.Second // outlasts the activations under the race detector
	h := shoptest.Start(t, 1, func(c *config.Dev) {
		c.Settings.ReservationTTL = time.Second
		c.Settings.GrainIdleTimeout = idle
	})
	member := h.Shop.Members[0]
	c := member.Cluster()
	carts := func() int { return member.ActivationCounts()["cart"] }
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	opt := cluster.WithTimeout(10 * time.Second)
	cart := func(i int) *cartpb.CartGrainClient {
		return cartpb.GetCartGrainClient(c, fmt.Sprintf("acc_placement_%d", i))
	}

	// all is above the activator's shrinkFloor; a line holds at most 5.
	const hot, all = 8, 1200
	quantity := func(i int) int64 { return int64(i%5 + 1) }
	for i := range hot {
		if _, err := cart(i).SetLine(&cartpb.SetLineRequest{Sku: sku, Quantity: quantity(i)}, opt); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var callers sync.WaitGroup
	callers.Go(func() { // the hot carts stay active
		tick := time.NewTicker(idle / 6)
		defer tick.Stop()
		for {
			for i := range hot {
				if _, err := cart(i).Get(&cartpb.GetCartRequest{}, opt); err != nil {
					t.Error(err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	defer func() { stop(); callers.Wait() }()

	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := hot + w; i < all; i += 16 {
				if _, err := cart(i).Get(&cartpb.GetCartRequest{}, opt); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := carts(); n < 1024 {
		t.Fatalf("%d carts active at once, want at least 1024 for the activator to make its map again", n)
	}

	deadline := time.Now().Add(idle + 30*time.Second)
	for carts() > hot {
		if time.Now().After(deadline) {
			t.Fatalf("%d carts active, want the %d hot ones", carts(), hot)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A little longer: the hot carts are called again after the map was made again.
	time.Sleep(idle / 2)
	if n := carts(); n != hot {
		t.Fatalf("%d carts active, want the %d hot ones (each activated once)", n, hot)
	}
	for i := range hot {
		v, err := cart(i).Get(&cartpb.GetCartRequest{}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Lines) != 1 || v.Lines[0].Quantity != quantity(i) {
			t.Fatalf("hot cart %d = %v, want one line of %d", i, v.Lines, quantity(i))
		}
	}
	stop()
	callers.Wait()

	for carts() > 0 {
		if time.Now().After(deadline.Add(idle)) {
			t.Fatalf("%d carts still active", carts())
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, err := cart(hot-1).Get(&cartpb.GetCartRequest{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Lines) != 1 || v.Lines[0].Quantity != quantity(hot-1) || carts() != 1 {
		t.Fatalf("passivated cart called again = %v with %d active, want its line of %d and one activation", v.Lines, carts(), quantity(hot-1))
	}
}
