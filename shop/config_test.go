package shop_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/config"
	"phoneshop/config/consulkv"
	"phoneshop/internal/consultest"
	"phoneshop/internal/shoptest"
)

// TestKVChangesAreEnforcedWithoutRestart: the maximum quantity per line and the
// read-only maintenance mode, changed in Consul KV, hold at the edge within 5 s.
func TestKVChangesAreEnforcedWithoutRestart(t *testing.T) {
	agent := consultest.Start(t)
	h := shoptest.Start(t, 1, func(c *config.Dev) { c.ConsulAddr = agent.HTTP })
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, value string) {
		t.Helper()
		if _, err := client.KV().Put(&api.KVPair{Key: consulkv.Prefix + key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	token, email := h.Shopper()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	setQty := func(q int) shoptest.Response {
		return h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": q}})
	}
	within5s := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5s: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if r := setQty(4); r.Status != http.StatusOK {
		t.Fatalf("quantity 4 under the default maximum: %d %s", r.Status, r.Body)
	}
	put(config.KeyMaxLineQuantity, "2")
	within5s("quantity 3 refused after max_line_quantity=2", func() bool {
		r := setQty(3)
		return r.Status == http.StatusBadRequest && r.ErrorCode() == "invalid_request"
	})
	if r := setQty(2); r.Status != http.StatusOK {
		t.Fatalf("quantity 2 at the new maximum: %d %s", r.Status, r.Body)
	}

	put(config.KeyMaintenanceMode, "true")
	within5s("changes refused in maintenance", func() bool {
		r := setQty(1)
		return r.Status == http.StatusServiceUnavailable && r.ErrorCode() == "unavailable"
	})
	if r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/phones"}); r.Status != http.StatusOK {
		t.Fatalf("reads in maintenance: %d", r.Status)
	}
	if _, err := h.TryLogin(email, "a long enough password"); err != nil {
		t.Fatalf("login in maintenance: %v", err)
	}
	put(config.KeyMaintenanceMode, "false")
	within5s("changes accepted again", func() bool { return setQty(1).Status == http.StatusOK })
}
