package edge_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// TestClusterTwoEdgesOverOneRedis runs two edges (two shops of one cluster member
// each) on one MariaDB and one Redis, as production's edges share them: each
// holds authentications and rendered phones in process, and what one edge revokes
// or changes is seen on the other at once. Two protoactor systems live in this one
// process, so it runs in `make test`'s pass without -race (persistence/redis's
// TestBus covers the same revocations under it).
func TestClusterTwoEdgesOverOneRedis(t *testing.T) {
	shoptest.MultiMember(t)
	dsn := dbtest.MySQLDSN(t)
	addr, prefix := dbtest.Redis(t)
	shared := func(c *config.Dev) { c.MySQLDSN, c.RedisAddr, c.RedisPrefix = dsn, addr, prefix }
	edgeA := shoptest.Start(t, 1, shared)
	edgeB := shoptest.Start(t, 1, shared)

	me := func(h *shoptest.Harness, token string) int {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}).Status
	}

	t.Run("logout_on_one_edge_is_refused_on_the_other_at_once", func(t *testing.T) {
		for i := range 5 {
			token, _ := edgeA.Shopper()
			for range 2 { // the second from the edge's in-process entry
				if s := me(edgeB, token); s != http.StatusOK {
					t.Fatalf("round %d: GET /me on B before the logout: %d", i, s)
				}
			}
			wantOK(t, do(t, edgeA, shoptest.Request{Method: "DELETE", Path: "/api/v1/sessions/current", Token: token}), http.StatusNoContent, nil)
			wantError(t, do(t, edgeB, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusUnauthorized, "unauthenticated")
		}
	})

	t.Run("role_granted_and_taken_on_one_edge_shows_on_the_other_at_once", func(t *testing.T) {
		admin := edgeA.Admin()
		token, email := edgeA.Shopper()
		var a accountBody
		wantOK(t, do(t, edgeA, shoptest.Request{Method: "GET", Path: "/api/v1/me", Token: token}), http.StatusOK, &a)
		lookup := shoptest.Request{Method: "GET", Path: "/api/v1/ops/accounts?email=" + url.QueryEscape(email), Token: token}
		setRoles := func(roles ...string) {
			t.Helper()
			if roles == nil {
				roles = []string{} // none but shopper
			}
			wantOK(t, do(t, edgeA, shoptest.Request{Method: "PUT", Path: "/api/v1/ops/accounts/" + a.ID + "/roles", Token: admin,
				Body: map[string]any{"roles": roles}}), http.StatusOK, nil)
		}
		for range 2 {
			wantError(t, do(t, edgeB, lookup), http.StatusForbidden, "forbidden")
		}
		setRoles("ops")
		wantOK(t, do(t, edgeB, lookup), http.StatusOK, nil)
		wantOK(t, do(t, edgeB, lookup), http.StatusOK, nil)
		setRoles()
		wantError(t, do(t, edgeB, lookup), http.StatusForbidden, "forbidden")
	})

	t.Run("stock_state_changed_through_one_edge_shows_in_the_other_edges_details", func(t *testing.T) {
		admin := edgeA.Admin()
		sku := shoptest.SoldOutSKUs(t, 1)[0]
		phoneID := loadSeed(t).variant(t, sku).PhoneID
		state := func() string {
			var d phoneDetail
			wantOK(t, do(t, edgeB, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + phoneID}), http.StatusOK, &d)
			for _, v := range d.Variants {
				if v.SKU == sku {
					return v.StockState
				}
			}
			t.Fatalf("phone %s has no variant %s", phoneID, sku)
			return ""
		}
		for range 2 { // rendered, then held
			if s := state(); s != "out_of_stock" {
				t.Fatalf("%s before the restock: %s", sku, s)
			}
		}
		edgeA.SetStock(admin, sku, 50)
		// The state change is published after the restock's answer (API.md: the
		// stock state may lag by a moment).
		deadline := time.Now().Add(5 * time.Second)
		for state() != "in_stock" {
			if time.Now().After(deadline) {
				t.Fatalf("%s still not in stock on the other edge 5s after the restock", sku)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
