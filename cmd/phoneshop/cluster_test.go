package main_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/internal/shoptest"
)

// The acceptance of issue 4 on real processes: node and edge processes of the
// phoneshop binary, a real Consul agent, MariaDB and Redis (clusterharness_test.go).
// Faults are injected with signals; the test restarts what it kills.

// TestOrdersSpreadOverNodes: 1,000 orders through one edge land on all
// three nodes, each hosting at least 20% of the order grains. Every cart holds
// two SKUs, so every order runs its saga in an order grain (an order of one SKU
// is born in its sale, without one).
func TestOrdersSpreadOverNodes(t *testing.T) {
	// Grains stay active for the whole test, so activations count every order.
	c := startCluster(t, clusterSpec{Nodes: 3, Edges: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s", "PHONESHOP_GRAIN_IDLE_TIMEOUT=10m"}})
	h := c.Edge(0)
	admin := c.Admin(h)
	c.WaitOpsUp(h, admin, time.Now().Add(30*time.Second))
	skus := shoptest.SoldOutSKUs(t, 4)
	for _, sku := range skus {
		h.SetStock(admin, sku, 600)
	}

	const shoppers, checkoutsEach = 100, 10
	begin := time.Now()
	var failures errorList
	var mu sync.Mutex
	var ids []string
	forEach(shoppers, 16, func(i int) {
		token, _, err := h.TryShopper()
		if err != nil {
			failures.add(err)
			return
		}
		for j := range checkoutsEach {
			co := checkout{token: token, key: fmt.Sprintf("spread-%d-%d", i, j), lines: map[string]int{skus[(i+j)%len(skus)]: 1, skus[(i+j+1)%len(skus)]: 1}}
			if err := fillCart(h, co.token, co.lines); err != nil {
				failures.add(err)
				return
			}
			r, err := co.post(h)
			if err != nil || r.Status != http.StatusCreated {
				failures.add(fmt.Errorf("checkout %s: %s", co.key, describe(r, err)))
				return
			}
			o, err := decodeOrder(r)
			if err != nil {
				failures.add(err)
				return
			}
			mu.Lock()
			ids = append(ids, o.ID)
			mu.Unlock()
		}
	})
	failures.fatal(t, "checkouts through the edge failed")
	t.Logf("%d orders in %s", len(ids), time.Since(begin).Round(time.Millisecond))
	slices.Sort(ids)
	if n := len(slices.Compact(ids)); n != shoppers*checkoutsEach {
		t.Fatalf("%d distinct order ids, want %d", n, shoppers*checkoutsEach)
	}

	up := c.WaitOpsUp(h, admin, time.Now().Add(10*time.Second))
	total := 0
	for _, m := range up {
		total += m.Activations["order"]
	}
	for _, m := range up {
		n := m.Activations["order"]
		t.Logf("%s (%s, member %s): %d order grains (%.1f%%), activations %v", c.NodeByAddr(m.Address), m.Address, m.ID, n,
			100*float64(n)/float64(max(total, 1)), m.Activations)
		if 5*n < total {
			t.Errorf("%s hosts %d of %d order grains: under 20%%", c.NodeByAddr(m.Address), n, total)
		}
	}
	if total < shoppers*checkoutsEach {
		t.Errorf("%d order grains active over the members, want at least one per order (%d)", total, shoppers*checkoutsEach)
	}
	c.RequireNoExits()
}

// TestKill9UnderLoadLosesNothing kills one of three nodes with SIGKILL in the
// middle of a checkout load that goes on for 10s more. The other nodes take over
// its grains from their snapshots: a client's retry of every checkout (same
// Idempotency-Key) gets the same order, or for one left unanswered its order or a
// clean refusal, never a second order;
// every 201 order exists, confirmed, with its lines; per SKU available + reserved +
// sold = received and sold is exactly what confirmed orders hold. The node then
// restarts on its port and rejoins.
func TestKill9UnderLoadLosesNothing(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 3, Edges: 1, Env: []string{
		"PHONESHOP_CONSUL_TTL=3s", "PHONESHOP_RESERVATION_TTL=3s", "PHONESHOP_GRAIN_IDLE_TIMEOUT=2m"}})
	h := c.Edge(0)
	admin := c.Admin(h)
	c.WaitOpsUp(h, admin, time.Now().Add(30*time.Second))

	// Two scarce SKUs the shoppers fight over, one plentiful: the load keeps
	// confirming orders after the scarce ones sell out.
	skus := shoptest.SoldOutSKUs(t, 3)
	for i, sku := range skus {
		h.SetStock(admin, sku, []int64{300, 400, 5000}[i])
	}
	linesFor := func(i int) map[string]int {
		switch i % 4 {
		case 0:
			return map[string]int{skus[0]: 1, skus[2]: 1}
		case 1:
			return map[string]int{skus[1]: 2, skus[2]: 1}
		case 2:
			return map[string]int{skus[0]: 1, skus[1]: 1, skus[2]: 1}
		default:
			return map[string]int{skus[2]: 1}
		}
	}

	type attempt struct {
		checkout
		started  time.Time
		first    shoptest.Response
		firstErr error
		retry    shoptest.Response
		retryErr error
		orderID  string // the order a 200/201 answered with
		listed   []orderView
		listErr  error
	}
	const workers = 16
	var (
		mu           sync.Mutex
		attempts     []*attempt
		acked        atomic.Int64
		setupFailed  atomic.Int64
		stop         = make(chan struct{})
		firstAcks    = make(chan struct{})
		firstAcksSet sync.Once
		wg           sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				token, _, err := h.TryShopper()
				if err != nil {
					setupFailed.Add(1)
					continue
				}
				a := &attempt{checkout: checkout{token: token, key: fmt.Sprintf("kill9-%d", i), lines: linesFor(i)}}
				if err := fillCart(h, a.token, a.lines); err != nil {
					setupFailed.Add(1) // no checkout was asked for: nothing was promised
					continue
				}
				a.started = time.Now()
				a.first, a.firstErr = a.post(h)
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
				if a.firstErr == nil && a.first.Status == http.StatusCreated && acked.Add(1) >= 80 {
					firstAcksSet.Do(func() { close(firstAcks) })
				}
			}
		})
	}
	select {
	case <-firstAcks:
	case <-time.After(60 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatalf("only %d checkouts succeeded within 60s of load", acked.Load())
	}
	victim := c.Nodes[2]
	ackedBeforeKill := acked.Load()
	victim.Kill9()
	killedAt := time.Now()
	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()

	statuses := map[string]int{}
	ackedAfterKill := 0
	for _, a := range attempts {
		statuses[answerKind(a.first, a.firstErr)]++
		if a.firstErr == nil && a.first.Status == http.StatusCreated && a.started.After(killedAt) {
			ackedAfterKill++
		}
	}
	t.Logf("%s killed with SIGKILL after %d checkouts were acknowledged; load went on 10s more: %d checkouts, answers %v, %d shoppers not set up (register or cart failed), %d checkouts begun after the kill acknowledged",
		victim.Name, ackedBeforeKill, len(attempts), statuses, setupFailed.Load(), ackedAfterKill)
	if ackedAfterKill == 0 {
		t.Errorf("no checkout begun after the kill was acknowledged in the 10s that followed: the remaining nodes did not take over")
	}

	// Consul has seen the node go (its check critical past the TTL).
	var survivors []string
	for _, n := range c.Nodes {
		if n != victim {
			survivors = append(survivors, n.ClusterAddr)
		}
	}
	slices.Sort(survivors)
	c.WaitPassing(survivors, time.Now().Add(30*time.Second))

	// A real client retries with the same Idempotency-Key: every checkout, and again
	// after a 503 (the API's "retry"), which a machine busy with other tests may still
	// answer while the survivors load the dead node's grains. A 201 gives the same
	// order again; any other answer becomes an order or a clean refusal within 30 s.
	retryUntil := time.Now().Add(30 * time.Second)
	forEach(len(attempts), workers, func(i int) {
		a := attempts[i]
		a.retry, _, a.retryErr = a.placeUntil(h, retryUntil)
	})
	var failures errorList
	for _, a := range attempts {
		firstOK := a.firstErr == nil && (a.first.Status == http.StatusCreated || a.first.Status == http.StatusOK)
		retryOK := a.retryErr == nil && (a.retry.Status == http.StatusCreated || a.retry.Status == http.StatusOK)
		switch {
		case firstOK && !retryOK:
			failures.add(fmt.Errorf("%s: first answer %s, the retry with the same key %s", a.key, describe(a.first, a.firstErr), describe(a.retry, a.retryErr)))
		case firstOK:
			first, err1 := decodeOrder(a.first)
			again, err2 := decodeOrder(a.retry)
			if err1 != nil || err2 != nil || first.ID != again.ID {
				failures.add(fmt.Errorf("%s: the retry of a 201 gave another order: %s then %s", a.key, a.first.Body, a.retry.Body))
			}
			a.orderID = first.ID
		case retryOK:
			o, err := decodeOrder(a.retry)
			if err != nil {
				failures.add(err)
			}
			a.orderID = o.ID
		case a.retryErr != nil || a.retry.Status >= 500 ||
			(a.retry.ErrorCode() != "out_of_stock" && a.retry.ErrorCode() != "conflict"):
			failures.add(fmt.Errorf("%s: first answer %s, the retry with the same key %s (want an order or a clean 409)",
				a.key, describe(a.first, a.firstErr), describe(a.retry, a.retryErr)))
		}
	}
	failures.fatal(t, "retries of the load's checkouts")

	// Every answered order exists, confirmed, with its lines; no shopper has a
	// second order; no shopper refused in the end holds a confirmed order.
	forEach(len(attempts), workers, func(i int) {
		a := attempts[i]
		a.listed, a.listErr = listOrders(h, a.token)
	})
	soldByOrders := map[string]int{}
	for _, a := range attempts {
		if a.listErr != nil {
			failures.add(a.listErr)
			continue
		}
		if len(a.listed) > 1 {
			failures.add(fmt.Errorf("%s: the shopper has %d orders from one Idempotency-Key: %+v", a.key, len(a.listed), a.listed))
			continue
		}
		confirmed := len(a.listed) == 1 && a.listed[0].Status == "confirmed"
		if confirmed {
			for sku, q := range a.listed[0].lines() {
				soldByOrders[sku] += q
			}
		}
		if a.orderID == "" {
			if confirmed {
				failures.add(fmt.Errorf("%s: refused (%s, then %s), yet order %s is confirmed", a.key,
					describe(a.first, a.firstErr), describe(a.retry, a.retryErr), a.listed[0].ID))
			}
			continue
		}
		r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/orders/" + a.orderID, Token: a.token})
		o, err := decodeOrder(r)
		switch {
		case r.Status != http.StatusOK || err != nil:
			failures.add(fmt.Errorf("%s: acknowledged order %s: %d %s", a.key, a.orderID, r.Status, r.Body))
		case o.Status != "confirmed" || !maps.Equal(o.lines(), a.lines):
			failures.add(fmt.Errorf("%s: acknowledged order %s is %s with lines %v, the cart had %v", a.key, a.orderID, o.Status, o.lines(), a.lines))
		case !confirmed || a.listed[0].ID != a.orderID:
			failures.add(fmt.Errorf("%s: acknowledged order %s, the shopper's orders list %+v", a.key, a.orderID, a.listed))
		}
	}
	failures.fatal(t, "orders after the kill")

	// Reservations of checkouts that never completed expire (TTL 3s); then the
	// units sold are exactly those of the confirmed orders.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var levels []shoptest.Level
		settled := true
		for _, sku := range skus {
			l := h.StockLevel(admin, sku) // fails the test if conservation is broken
			levels = append(levels, l)
			settled = settled && l.Reserved == 0
		}
		if settled {
			for i, sku := range skus {
				if levels[i].Sold != int64(soldByOrders[sku]) {
					t.Errorf("%s: %d sold, confirmed orders hold %d (%+v)", sku, levels[i].Sold, soldByOrders[sku], levels[i])
				}
			}
			t.Logf("stock after the load: %+v", levels)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("units still reserved 30s after the load (reservation TTL 3s): %+v", levels)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The supervisor starts the node again on its port: it rejoins.
	restartAt := time.Now()
	victim.Start()
	c.WaitMembers(restartAt.Add(30 * time.Second))
	c.WaitOpsUp(h, admin, restartAt.Add(30*time.Second))
	waitEveryNodeServes(t, c, h, admin, skus[2], restartAt.Add(30*time.Second))
	t.Logf("%s restarted and rejoined (checkouts served on every node) in %s", victim.Name, time.Since(restartAt).Round(time.Millisecond))
	c.RequireNoExits()
}

// TestStalledNodeRejoins freezes a node with SIGSTOP for 3x the Consul TTL,
// so that the cluster moves on without it, then lets it run again: within 30s
// Consul has the three nodes passing, the ops endpoint lists them up, and checkouts
// are served on every node (each one hosts order grains of the checkouts made after).
func TestStalledNodeRejoins(t *testing.T) {
	const ttl = 2 * time.Second
	c := startCluster(t, clusterSpec{Nodes: 3, Edges: 1, Env: []string{
		"PHONESHOP_CONSUL_TTL=" + ttl.String(), "PHONESHOP_GRAIN_IDLE_TIMEOUT=10m"}})
	h := c.Edge(0)
	admin := c.Admin(h)
	before := c.WaitOpsUp(h, admin, time.Now().Add(30*time.Second))
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 3000)

	// Carts active before the stall, some of them on the node that stalls.
	const shoppers = 30
	checkouts := make([]checkout, shoppers)
	var failures errorList
	forEach(shoppers, 8, func(i int) {
		token, _, err := h.TryShopper()
		if err != nil {
			failures.add(err)
			return
		}
		checkouts[i] = checkout{token: token, key: fmt.Sprintf("stall-%d", i), lines: map[string]int{sku: 1}}
		if err := fillCart(h, token, checkouts[i].lines); err != nil {
			failures.add(err)
		}
	})
	failures.fatal(t, "carts before the stall")

	victim := c.Nodes[1]
	victimID := memberID(before, victim.ClusterAddr)
	members, err := OpsMembers(h, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.ID == victimID && m.Activations["cart"] == 0 {
			t.Fatalf("none of the %d carts is on %s, the node about to stall: %+v", shoppers, victim.Name, members)
		}
	}
	victim.SigStop()
	stoppedAt := time.Now()
	var others []string
	for _, n := range c.Nodes {
		if n != victim {
			others = append(others, n.ClusterAddr)
		}
	}
	slices.Sort(others)
	// The stall must outlast the TTL in Consul's view, or the test injects nothing.
	c.WaitPassing(others, stoppedAt.Add(3*ttl))
	t.Logf("Consul marked %s critical %s after SIGSTOP", victim.Name, time.Since(stoppedAt).Round(time.Millisecond))
	time.Sleep(time.Until(stoppedAt.Add(3 * ttl)))
	victim.SigCont()
	contAt := time.Now()
	deadline := contAt.Add(30 * time.Second)

	c.WaitMembers(deadline)
	t.Logf("Consul has the 3 nodes passing %s after SIGCONT", time.Since(contAt).Round(time.Millisecond))
	up := c.WaitOpsUp(h, admin, deadline)
	t.Logf("the ops endpoint lists the 3 nodes up %s after SIGCONT; %s was member %s, now %s",
		time.Since(contAt).Round(time.Millisecond), victim.Name, victimID, memberID(up, victim.ClusterAddr))

	// The carts from before the stall check out (retried like a client, with the
	// same key); then rounds of new checkouts until one lands on every node.
	forEach(shoppers, 8, func(i int) {
		r, tries, err := checkouts[i].placeUntil(h, deadline)
		if err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusOK) {
			failures.add(fmt.Errorf("checkout %s after the stall, %d tries: %s", checkouts[i].key, tries, describe(r, err)))
		}
	})
	failures.fatal(t, "checkouts of the carts from before the stall")
	up = waitEveryNodeServes(t, c, h, admin, sku, deadline)
	t.Logf("every node serves checkouts %s after SIGCONT; %s was member %s, now %s",
		time.Since(contAt).Round(time.Millisecond), victim.Name, victimID, memberID(up, victim.ClusterAddr))
	c.RequireNoExits(victim) // the stalled node may exit for its supervisor to restart it
}

// TestConsulRestartedWithDataWiped restarts the Consul agent with its state
// lost: within 30s every node has registered again and is passing, and checkouts
// through the edge go on.
func TestConsulRestartedWithDataWiped(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 3, Edges: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s", "PHONESHOP_GRAIN_IDLE_TIMEOUT=10m"}})
	h := c.Edge(0)
	admin := c.Admin(h)
	c.WaitOpsUp(h, admin, time.Now().Add(30*time.Second))
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 3000)
	before := waitEveryNodeServes(t, c, h, admin, sku, time.Now().Add(30*time.Second))

	restartAt := time.Now()
	c.Consul.Restart()
	t.Logf("Consul answers again %s after it was killed, with no state", time.Since(restartAt).Round(time.Millisecond))
	if members, err := c.ConsulMembers(); err == nil && len(members) != 0 {
		t.Logf("registrations right after the restart: %+v", members)
	}
	c.WaitMembers(restartAt.Add(30 * time.Second))
	t.Logf("the 3 nodes registered again and passing %s after the restart", time.Since(restartAt).Round(time.Millisecond))
	c.WaitOpsUp(h, admin, restartAt.Add(30*time.Second))
	after := waitEveryNodeServes(t, c, h, admin, sku, restartAt.Add(30*time.Second))
	t.Logf("checkouts served on every node %s after the restart", time.Since(restartAt).Round(time.Millisecond))
	for _, n := range c.Nodes {
		t.Logf("%s: member %s before, %s after", n.Name, memberID(before, n.ClusterAddr), memberID(after, n.ClusterAddr))
	}
	c.RequireNoExits(c.Nodes...) // a node may exit for its supervisor to restart it
}

// TestMaxLineQuantityFromConsulKV changes phoneshop/config/max_line_quantity
// in Consul KV: every edge enforces the new maximum within 5s, without a restart;
// an invalid value is refused and the last good one kept; deleting the key brings
// back the default.
func TestMaxLineQuantityFromConsulKV(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 3, Edges: 2, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	sku := shoptest.SoldOutSKUs(t, 1)[0] // a cart line reserves nothing: stock does not matter
	type edgeClient struct {
		name  string
		h     *shoptest.Harness
		token string
	}
	var edges []edgeClient
	pids := map[string]int{}
	for i, e := range c.Edges {
		h := c.Edge(i)
		token, _ := h.Shopper()
		edges = append(edges, edgeClient{name: e.Name, h: h, token: token})
		pids[e.Name] = e.Pid()
	}
	setLine := func(e edgeClient, q int) (shoptest.Response, error) {
		return e.h.TryDo(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: e.token, Body: map[string]int{"quantity": q}})
	}
	// refusedOver reports whether an edge refuses quantity q as over the maximum m.
	refusedOver := func(e edgeClient, q, m int) (bool, string) {
		r, err := setLine(e, q)
		if err != nil {
			return false, err.Error()
		}
		var body struct {
			Error struct {
				Code    string         `json:"code"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		_ = json.Unmarshal(r.Body, &body)
		ok := r.Status == http.StatusBadRequest && body.Error.Code == "invalid_request" && body.Error.Details["max_quantity"] == float64(m)
		return ok, fmt.Sprintf("%d %s", r.Status, r.Body)
	}
	accepted := func(e edgeClient, q int) (bool, string) {
		r, err := setLine(e, q)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusOK, fmt.Sprintf("%d %s", r.Status, r.Body)
	}
	// onEveryEdge waits until ok holds on every edge, failing at the deadline.
	onEveryEdge := func(what string, deadline time.Time, ok func(edgeClient) (bool, string)) {
		t.Helper()
		for _, e := range edges {
			for {
				good, last := ok(e)
				if good {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: not on %s in time; last answer: %s", what, e.name, last)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	kv := c.api.KV()
	put := func(key, value string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: "phoneshop/config/" + key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	del := func(key string) {
		t.Helper()
		if _, err := kv.Delete("phoneshop/config/"+key, nil); err != nil {
			t.Fatal(err)
		}
	}

	onEveryEdge("the default maximum 5 allows 5", time.Now(), func(e edgeClient) (bool, string) { return accepted(e, 5) })
	onEveryEdge("the default maximum 5 refuses 6", time.Now(), func(e edgeClient) (bool, string) { return refusedOver(e, 6, 5) })

	put("max_line_quantity", "2")
	changed := time.Now()
	onEveryEdge("max_line_quantity=2 in KV refuses 3 within 5s", changed.Add(5*time.Second), func(e edgeClient) (bool, string) { return refusedOver(e, 3, 2) })
	t.Logf("every edge refuses 3 units %s after the KV change", time.Since(changed).Round(time.Millisecond))
	onEveryEdge("max_line_quantity=2 allows 2", time.Now(), func(e edgeClient) (bool, string) { return accepted(e, 2) })

	for _, bad := range []string{"0", "lots"} {
		put("max_line_quantity", bad)
		// A later change every edge shows proves it has read the bad value too
		// (the watcher reads the whole prefix at once).
		put("maintenance_mode", "true")
		onEveryEdge("maintenance_mode=true written after max_line_quantity="+bad, time.Now().Add(5*time.Second), func(e edgeClient) (bool, string) {
			r, err := setLine(e, 1)
			if err != nil {
				return false, err.Error()
			}
			return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "maintenance"), fmt.Sprintf("%d %s", r.Status, r.Body)
		})
		del("maintenance_mode")
		onEveryEdge("out of maintenance with max_line_quantity="+bad+", 2 allowed", time.Now().Add(5*time.Second), func(e edgeClient) (bool, string) { return accepted(e, 2) })
		onEveryEdge("max_line_quantity="+bad+" refused: 3 still over the last good maximum 2", time.Now(), func(e edgeClient) (bool, string) { return refusedOver(e, 3, 2) })
	}

	del("max_line_quantity")
	changed = time.Now()
	onEveryEdge("the key deleted: the default 5 allows 5 within 5s", changed.Add(5*time.Second), func(e edgeClient) (bool, string) { return accepted(e, 5) })
	onEveryEdge("the key deleted: the default 5 refuses 6", time.Now(), func(e edgeClient) (bool, string) { return refusedOver(e, 6, 5) })

	for _, e := range c.Edges {
		if e.Pid() != pids[e.Name] {
			t.Errorf("%s was restarted (pid %d, was %d): the change must apply without a restart", e.Name, e.Pid(), pids[e.Name])
		}
	}
	c.RequireNoExits()
}

// waitEveryNodeServes places rounds of checkouts through h (new shoppers, one
// unit of sku each, retried like a client with the same Idempotency-Key) until in
// one round every node gained cart grains: Consul has the nodes passing, the ops
// endpoint lists them up, and the cart activations of each member up grew (from
// zero for a member id not seen before the round). A cart grain runs its
// shopper's checkout; an order of one SKU is born in its sale, without an order
// grain. Every checkout must succeed by
// the deadline, and the nodes serve by then; it returns the members up.
func waitEveryNodeServes(t *testing.T, c *shopCluster, h *shoptest.Harness, admin, sku string, deadline time.Time) []opsMember {
	t.Helper()
	const perRound = 30
	for round := 1; ; round++ {
		before := map[string]int{}
		members, err := OpsMembers(h, admin)
		for _, m := range members {
			before[m.ID] = m.Activations["cart"]
		}
		var failures errorList
		forEach(perRound, 8, func(i int) {
			token, _, err := h.TryShopper()
			if err != nil {
				failures.add(err)
				return
			}
			co := checkout{token: token, key: fmt.Sprintf("round-%d-%d", round, i), lines: map[string]int{sku: 1}}
			if err := fillCartUntil(h, token, co.lines, deadline); err != nil {
				failures.add(err)
				return
			}
			r, tries, err := co.placeUntil(h, deadline)
			if err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusOK) {
				failures.add(fmt.Errorf("checkout %s, %d tries: %s", co.key, tries, describe(r, err)))
			}
		})
		failures.fatal(t, fmt.Sprintf("checkouts of round %d", round))

		passing, cerr := c.PassingAddrs()
		members, err = OpsMembers(h, admin)
		up := upMembers(members)
		var upAddrs, idle []string
		for _, m := range up {
			upAddrs = append(upAddrs, m.Address)
			if m.Activations["cart"] <= before[m.ID] {
				idle = append(idle, fmt.Sprintf("%s (member %s, %d cart grains before the round, %d after)",
					c.NodeByAddr(m.Address), m.ID, before[m.ID], m.Activations["cart"]))
			}
		}
		slices.Sort(upAddrs)
		if cerr == nil && err == nil && slices.Equal(passing, c.nodeAddrs()) && slices.Equal(upAddrs, c.nodeAddrs()) && len(idle) == 0 {
			return up
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every node serves checkouts by the deadline, after %d rounds of %d: Consul passing %v (%v), want %v; "+
				"members up %v (%v); no new cart grains on %v; members: %+v",
				round, perRound, passing, cerr, c.nodeAddrs(), upAddrs, err, idle, members)
		}
		t.Logf("round %d of checkouts: not yet served on every node (passing %v, up %v, idle %v)", round, passing, upAddrs, idle)
		time.Sleep(500 * time.Millisecond)
	}
}

// checkout is one shopper's checkout: the lines put in the cart and the
// Idempotency-Key.
type checkout struct {
	token string
	key   string
	lines map[string]int
}

// post checks the cart out once.
func (co checkout) post(h *shoptest.Harness) (shoptest.Response, error) {
	return h.TryDo(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: co.token,
		Headers: map[string]string{"Idempotency-Key": co.key}, Body: shoptest.Address()})
}

// placeUntil checks out as a client does: after a 5xx or a transport error it
// tries again with the same Idempotency-Key, until the deadline.
func (co checkout) placeUntil(h *shoptest.Harness, deadline time.Time) (shoptest.Response, int, error) {
	for tries := 1; ; tries++ {
		r, err := co.post(h)
		if (err == nil && r.Status < 500) || time.Now().After(deadline) {
			return r, tries, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fillCart puts the lines in the shopper's cart.
func fillCart(h *shoptest.Harness, token string, lines map[string]int) error {
	return fillCartUntil(h, token, lines, time.Time{})
}

// fillCartUntil puts the lines in the cart, trying a line again after a 5xx or a
// transport error until the deadline (setting a line's quantity is idempotent).
func fillCartUntil(h *shoptest.Harness, token string, lines map[string]int, deadline time.Time) error {
	for sku, q := range lines {
		for {
			r, err := h.TryDo(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": q}})
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if (err == nil && r.Status < 500) || time.Now().After(deadline) {
				return fmt.Errorf("cart line %s x%d: %s", sku, q, describe(r, err))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// orderView is an order as the API shows it.
type orderView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Items  []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"items"`
}

func (o orderView) lines() map[string]int {
	m := map[string]int{}
	for _, it := range o.Items {
		m[it.SKU] += it.Quantity
	}
	return m
}

func decodeOrder(r shoptest.Response) (orderView, error) {
	var o orderView
	if err := json.Unmarshal(r.Body, &o); err != nil || o.ID == "" {
		return o, fmt.Errorf("not an order (%v): %d %s", err, r.Status, r.Body)
	}
	return o, nil
}

// listOrders lists the shopper's orders (a shopper in these tests has few).
func listOrders(h *shoptest.Harness, token string) ([]orderView, error) {
	r, err := h.TryDo(shoptest.Request{Method: "GET", Path: "/api/v1/orders?page_size=100", Token: token})
	if err != nil || r.Status != http.StatusOK {
		return nil, fmt.Errorf("list orders: %s", describe(r, err))
	}
	var list struct {
		Items []orderView `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, fmt.Errorf("list orders: %v: %s", err, r.Body)
	}
	return list.Items, nil
}

// memberID is the id of the member at addr in members ("" if none).
func memberID(members []opsMember, addr string) string {
	for _, m := range members {
		if m.Address == addr {
			return m.ID
		}
	}
	return ""
}

// answerKind names an answer for a tally: its status and error code.
func answerKind(r shoptest.Response, err error) string {
	switch {
	case err != nil:
		return "transport error"
	case r.Status < 300:
		return fmt.Sprint(r.Status)
	default:
		return fmt.Sprintf("%d %s", r.Status, r.ErrorCode())
	}
}

// describe renders an answer for a failure message.
func describe(r shoptest.Response, err error) string {
	if err != nil {
		return "transport error: " + err.Error()
	}
	body := string(r.Body)
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("%d %s", r.Status, body)
}

// forEach calls fn(i) for i from 0 to n-1 on workers goroutines.
func forEach(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// errorList collects failures from goroutines.
type errorList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// fatal fails the test with the first failures, if any.
func (l *errorList) fatal(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return
	}
	var lines []string
	for _, err := range l.errs[:min(len(l.errs), 10)] {
		lines = append(lines, "  "+err.Error())
	}
	t.Fatalf("%s: %d failures; the first:\n%s", what, len(l.errs), strings.Join(lines, "\n"))
}
