package edge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/cart"
	"phoneshop/actors/snapshot"
	"phoneshop/fault"
	"phoneshop/grain/call"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/reasonpb"
)

// faultyCarts is the shop's cart store, failing every load of the carts it is told
// to fail.
type faultyCarts struct {
	cart.Store
	mu    sync.Mutex
	fails map[string]error // by account id
}

func (s *faultyCarts) fail(accountID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[accountID] = err
}

func (s *faultyCarts) LoadCart(ctx context.Context, accountID string) (snapshot.Snapshot, error) {
	s.mu.Lock()
	err := s.fails[accountID]
	s.mu.Unlock()
	if err != nil {
		return snapshot.Snapshot{}, err
	}
	return s.Store.LoadCart(ctx, accountID)
}

// withFaultyCarts puts a faultyCarts in front of the store of the cart grains the
// shop activates from now on. The dependencies of a kind are attached per actor
// system (grain/grainctx), and every activation reads them in Init.
func withFaultyCarts(t *testing.T, h *shoptest.Harness) *faultyCarts {
	t.Helper()
	if len(h.Shop.Members) != 1 {
		t.Fatalf("the shop has %d members, want 1 (the one the edge calls)", len(h.Shop.Members))
	}
	carts := &faultyCarts{Store: h.Shop.Store, fails: map[string]error{}}
	// A GET of the cart reaches only the store, the timeouts and the logger.
	cart.Attach(h.Shop.Members[0].System(), cart.Deps{Store: carts, MaxLineQuantity: h.Shop.Live.MaxLineQuantity,
		Currency: "USD", Calls: call.DefaultPolicy(), StoreTimeout: 5 * time.Second, Logger: shoptest.Logger()})
	return carts
}

// TestGrainStoreFailuresOverHTTP: a grain whose store fails with an error nobody
// named (a bug) answers reason INTERNAL, which the edge turns into 500 with no
// detail; a store that did not answer in time is a 503 to retry.
func TestGrainStoreFailuresOverHTTP(t *testing.T) {
	h := shoptest.Start(t, 1)
	carts := withFaultyCarts(t, h)
	const detail = "row 42 of carts holds a negative quantity"
	tests := []struct {
		name       string
		err        error
		wantReason reasonpb.ErrorReason
		wantStatus int
		wantCode   string
	}{
		{"store_bug_is_internal_and_500_without_details", errors.New(detail), reasonpb.ErrorReason_INTERNAL,
			http.StatusInternalServerError, "internal"},
		{"store_deadline_is_unavailable_and_503", fault.Unavailable(context.DeadlineExceeded), reasonpb.ErrorReason_UNAVAILABLE,
			http.StatusServiceUnavailable, "unavailable"},
		{"store_deadline_unwrapped_is_unavailable_and_503", context.DeadlineExceeded, reasonpb.ErrorReason_UNAVAILABLE,
			http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, _ := h.Shopper()
			var me accountBody
			wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &me)
			carts.fail(me.ID, tc.err)

			_, err := cartpb.GetCartGrainClient(h.Shop.Members[0].Cluster(), me.ID).
				Get(&cartpb.GetCartRequest{}, cluster.WithTimeout(5*time.Second))
			if got := cluster.Reason(err); got != tc.wantReason.String() {
				t.Fatalf("grain answer = %v, want reason %s", err, tc.wantReason)
			}
			r := do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/cart", Token: token})
			e := wantError(t, r, tc.wantStatus, tc.wantCode)
			if strings.Contains(string(r.Body), "row 42") {
				t.Fatalf("the answer leaks the failure's details: %s", r.Body)
			}
			if tc.wantCode == "internal" && e.Error.Message != "internal error" {
				t.Fatalf("message = %q, want the generic %q", e.Error.Message, "internal error")
			}
		})
	}
}

// TestRestockIdempotencyKeyReusedWithAnotherQuantity: a delivery's Idempotency-Key
// names one delivery; resent with the same quantity it is a retry (200, nothing
// added), with another quantity it is refused with 422 and adds nothing.
func TestRestockIdempotencyKeyReusedWithAnotherQuantity(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	restock := func(key string, received int64) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/inventory/" + sku, Token: admin,
			Headers: map[string]string{"Idempotency-Key": key}, Body: map[string]int64{"received": received}})
	}
	tests := []struct {
		name       string
		received   int64
		wantStatus int
		wantCode   string
	}{
		{"first_delivery_is_received", 5, http.StatusOK, ""},
		{"same_key_and_quantity_is_a_retry", 5, http.StatusOK, ""},
		{"same_key_with_another_quantity_is_422_idempotency_mismatch", 7, http.StatusUnprocessableEntity, "idempotency_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := restock("delivery-2025-03-01", tc.received)
			if tc.wantCode != "" {
				wantError(t, r, tc.wantStatus, tc.wantCode)
			} else {
				wantOK(t, r, tc.wantStatus, nil)
			}
			if l := h.StockLevel(admin, sku); l.Received != 5 || l.Available != 5 {
				t.Fatalf("level = %+v, want the one delivery of 5", l)
			}
		})
	}
}

// TestRestockIdempotencyKeyAddsOnceForEver: a delivery's Idempotency-Key adds
// its units once however many other deliveries came between (more than the 64 a
// SKU's snapshot keeps) and across a restart of the shop.
func TestRestockIdempotencyKeyAddsOnceForEver(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	restock := func(key string, received int64) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/inventory/" + sku, Token: admin,
			Headers: map[string]string{"Idempotency-Key": key}, Body: map[string]int64{"received": received}})
	}
	wantOK(t, restock("truck-1", 5), http.StatusOK, nil)
	for i := range 70 {
		wantOK(t, restock(fmt.Sprintf("other-%d", i), 1), http.StatusOK, nil)
	}
	again := func(when string) {
		t.Helper()
		var l shoptest.Level
		wantOK(t, restock("truck-1", 5), http.StatusOK, &l)
		if l.Received != 75 || l.Available != 75 {
			t.Fatalf("%s: truck-1 resent: %+v; want 75 received (its 5 once, and 70 others)", when, l)
		}
		wantError(t, restock("truck-1", 6), http.StatusUnprocessableEntity, "idempotency_mismatch")
	}
	again("after 70 other deliveries")
	h.Restart()
	again("after a restart")
}
