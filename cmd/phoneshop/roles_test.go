package main_test

import (
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/internal/consultest"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
	"phoneshop/internal/testbin"
)

// TestNodesAndEdgeOverConsul runs the shop as separate processes: two nodes hosting
// the grains and one edge, finding each other through a real Consul agent, on
// MariaDB and Redis. Checkouts through the edge confirm, and the stock adds up.
func TestNodesAndEdgeOverConsul(t *testing.T) {
	agent := consultest.Start(t)
	dsn := dbtest.MySQLDSN(t)
	redisAddr, redisPrefix := dbtest.Redis(t)
	procs := newShopProcesses(t)
	common := []string{
		"PHONESHOP_MYSQL_DSN=" + dsn, "PHONESHOP_CONSUL_ADDR=" + agent.HTTP,
		"PHONESHOP_REDIS_ADDR=" + redisAddr, "PHONESHOP_REDIS_PREFIX=" + redisPrefix,
		"PHONESHOP_LOG_LEVEL=warn",
	}
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	members := func() int {
		entries, _, err := client.Health().Service("phoneshop", "", true, nil)
		if err != nil {
			return 0
		}
		return len(entries)
	}

	// The nodes' cluster ports are their own choice (PHONESHOP_CLUSTER_PORT=0).
	node1 := procs.add("node1", "node", common, healthPort)
	node2 := procs.add("node2", "node", common, healthPort)
	procs.launch(90*time.Second, node1, node2)
	deadline := time.Now().Add(60 * time.Second)
	for members() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes registered in Consul within 60s, want 2", members())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A supervisor's health check of a node, as the container image runs it (a node
	// registers before it has finished starting, so the check is retried).
	for deadline = time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command(procs.bin, "probe", node1.healthURL+"/readyz").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe of the node did not succeed within 30s: %v %s", err, out)
		}
	}
	// A port of the test's own: nothing listens there.
	if err := exec.Command(procs.bin, "probe", "http://"+testbin.Addr(t)+"/readyz").Run(); err == nil {
		t.Fatal("probe of nothing listening succeeded")
	}
	edge := procs.add("edge1", "edge", append(common,
		"PHONESHOP_ADMIN_EMAIL=admin@example.com", "PHONESHOP_ADMIN_PASSWORD=admin password 1",
		"PHONESHOP_UNSUBSCRIBE_SECRET="+clusterUnsubscribeSecret,
		"PHONESHOP_PASSWORD_MEMORY_KIB=64", "PHONESHOP_PASSWORD_ITERATIONS=1"), httpPort)
	procs.launch(60*time.Second, edge)
	h := &shoptest.Harness{T: t, URL: edge.URL, Client: &http.Client{Timeout: 15 * time.Second}}
	if members() != 2 {
		t.Fatalf("the edge registered as a member: %d members", members())
	}

	admin, err := h.TryLogin("admin@example.com", "admin password 1")
	if err != nil {
		t.Fatal(err)
	}
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 20)
	var orders []string
	for i := range 12 {
		token, _ := h.Shopper()
		if r := h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}}); r.Status != http.StatusOK {
			t.Fatalf("cart: %d %s", r.Status, r.Body)
		}
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
			Headers: map[string]string{"Idempotency-Key": "roles-" + strings.Repeat("k", i+1)}, Body: shoptest.Address()})
		if r.Status != http.StatusCreated {
			t.Fatalf("checkout %d through the edge: %d %s", i, r.Status, r.Body)
		}
		var o struct {
			ID string `json:"id"`
		}
		r.JSON(t, &o)
		orders = append(orders, o.ID)
	}
	if l := h.StockLevel(admin, sku); l.Sold != 12 || l.Available != 8 || l.Reserved != 0 {
		t.Fatalf("stock after 12 checkouts through the edge = %+v, want 12 sold and 8 available", l)
	}
	slices.Sort(orders)
	if len(slices.Compact(orders)) != 12 {
		t.Fatalf("order ids not distinct: %v", orders)
	}
	requireNoExits(t, procs.all)
}
