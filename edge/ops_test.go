package edge_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/cluster/memberinfo"
	"phoneshop/internal/shoptest"
)

// clusterView is GET /api/v1/ops/cluster.
type clusterView struct {
	Members []struct {
		ID          string           `json:"id"`
		Address     string           `json:"address"`
		Kinds       []string         `json:"kinds"`
		Activations map[string]int64 `json:"activations"`
		Status      string           `json:"status"`
		StartedAt   string           `json:"started_at"`
	} `json:"members"`
	Totals map[string]int64 `json:"totals"`
	Edge   struct {
		ID                string           `json:"id"`
		RequestsTotal     int64            `json:"requests_total"`
		ServerErrorsTotal int64            `json:"server_errors_total"`
		Checkouts         map[string]int64 `json:"checkouts"`
		GrainCallsTotal   int64            `json:"grain_calls_total"`
	} `json:"edge"`
	Health     map[string]string `json:"health"`
	ObservedAt string            `json:"observed_at"`
}

const clusterPath = "/api/v1/ops/cluster"

func readClusterView(t *testing.T, h *shoptest.Harness, token string) clusterView {
	t.Helper()
	var v clusterView
	wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: clusterPath, Token: token}), http.StatusOK, &v)
	return v
}

// fillCarts gives n new shoppers one line each, so that n cart grains are active.
func fillCarts(t *testing.T, h *shoptest.Harness, n int) {
	t.Helper()
	for range n {
		token, _ := h.Shopper()
		putItem(t, h, token, "google-pixel-8-128-obsidian", 1)
	}
}

func TestOpsClusterView(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	shopper, _ := h.Shopper()

	t.Run("cluster_401_without_token", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: clusterPath}), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("cluster_403_for_shopper", func(t *testing.T) {
		wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: clusterPath, Token: shopper}), http.StatusForbidden, "forbidden")
	})

	t.Run("cluster_200_for_ops_role", func(t *testing.T) {
		if _, err := h.Shop.Accounts.Register(context.Background(), "ops-cluster@example.com", "ops password 1", "Ops",
			account.RoleOps); err != nil {
			t.Fatal(err)
		}
		token, err := h.TryLogin("ops-cluster@example.com", "ops password 1")
		if err != nil {
			t.Fatal(err)
		}
		readClusterView(t, h, token)
	})

	t.Run("cluster_lists_the_member_up_with_its_kinds_and_healthy_dependencies", func(t *testing.T) {
		v := readClusterView(t, h, admin)
		m := h.Shop.Members[0]
		if len(v.Members) != 1 {
			t.Fatalf("members = %+v, want the one member", v.Members)
		}
		got := v.Members[0]
		if got.ID != m.ID() || got.Address != m.Address() || got.Status != "up" {
			t.Errorf("member = %s at %s %s, want %s at %s up", got.ID, got.Address, got.Status, m.ID(), m.Address())
		}
		if diff := cmp.Diff([]string{"cart", "inventory", "order", "promo"}, got.Kinds); diff != "" {
			t.Errorf("kinds (-want +got):\n%s", diff)
		}
		if got.StartedAt == "" {
			t.Error("member has no started_at")
		}
		// The seed received stock through every SKU's inventory grain.
		if got.Activations["inventory"] < 1 {
			t.Errorf("inventory activations = %d, want the seeded SKUs", got.Activations["inventory"])
		}
		if diff := cmp.Diff(got.Activations, v.Totals); diff != "" {
			t.Errorf("totals of one member differ from its activations (-member +totals):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"store": "up", "cache": "up", "cluster": "up"}, v.Health); diff != "" {
			t.Errorf("health (-want +got):\n%s", diff)
		}
		if v.Edge.ID == "" || v.ObservedAt == "" {
			t.Errorf("edge id %q, observed_at %q: want both", v.Edge.ID, v.ObservedAt)
		}
	})

	t.Run("cluster_counts_the_cart_a_shopper_filled", func(t *testing.T) {
		before := readClusterView(t, h, admin)
		token, _ := h.Shopper()
		putItem(t, h, token, "google-pixel-8-128-obsidian", 1)
		after := readClusterView(t, h, admin)
		if got := after.Members[0].Activations["cart"]; got < 1 || got != before.Members[0].Activations["cart"]+1 {
			t.Errorf("cart activations = %d after a new cart, want %d+1", got, before.Members[0].Activations["cart"])
		}
		if after.Totals["cart"] != after.Members[0].Activations["cart"] {
			t.Errorf("totals.cart = %d, member says %d", after.Totals["cart"], after.Members[0].Activations["cart"])
		}
	})

	t.Run("cluster_edge_counters_follow_traffic_but_not_the_dashboard", func(t *testing.T) {
		first := readClusterView(t, h, admin)
		second := readClusterView(t, h, admin)
		if second.Edge.RequestsTotal != first.Edge.RequestsTotal {
			t.Errorf("requests_total moved from %d to %d with only the dashboard reading",
				first.Edge.RequestsTotal, second.Edge.RequestsTotal)
		}
		if second.Edge.ID != first.Edge.ID {
			t.Errorf("edge id changed from %q to %q", first.Edge.ID, second.Edge.ID)
		}

		sku := shoptest.SoldOutSKUs(t, 1)[0]
		h.SetStock(admin, sku, 1)
		buyer, _ := h.Shopper()
		buy(t, h, buyer, sku, 1, "ops-view-order")
		// The same key again is a replay, not a second order.
		wantOK(t, checkout(t, h, buyer, "ops-view-order", shoptest.Address()), http.StatusOK, nil)
		putItem(t, h, buyer, sku, 1)
		wantError(t, checkout(t, h, buyer, "ops-view-sold-out", shoptest.Address()), http.StatusConflict, "out_of_stock")

		third := readClusterView(t, h, admin)
		for outcome, want := range map[string]int64{"confirmed": 1, "replayed": 1, "out_of_stock": 1} {
			if got := third.Edge.Checkouts[outcome] - second.Edge.Checkouts[outcome]; got != want {
				t.Errorf("checkouts[%s] grew by %d, want %d (before %v, after %v)", outcome, got, want,
					second.Edge.Checkouts, third.Edge.Checkouts)
			}
		}
		if third.Edge.RequestsTotal <= second.Edge.RequestsTotal {
			t.Errorf("requests_total = %d after shopping, was %d", third.Edge.RequestsTotal, second.Edge.RequestsTotal)
		}
		if third.Edge.GrainCallsTotal <= second.Edge.GrainCallsTotal {
			t.Errorf("grain_calls_total = %d after shopping, was %d", third.Edge.GrainCallsTotal, second.Edge.GrainCallsTotal)
		}
	})

	t.Run("ops_page_served_without_token", func(t *testing.T) {
		for path, contentType := range map[string]string{
			"/ops": "text/html", "/ops/ops.js": "text/javascript", "/ops/ops.css": "text/css",
		} {
			r := do(t, h, shoptest.Request{Method: "GET", Path: path})
			if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), contentType) {
				t.Errorf("GET %s = %d %q, want 200 %s", path, r.Status, r.Header.Get("Content-Type"), contentType)
			}
			if r.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("GET %s has no Content-Security-Policy", path)
			}
		}
		page := do(t, h, shoptest.Request{Method: "GET", Path: "/ops"})
		for _, want := range []string{`src="/ops/ops.js"`, `href="/ops/ops.css"`, `id="login-form"`} {
			if !strings.Contains(string(page.Body), want) {
				t.Errorf("page lacks %s", want)
			}
		}
		for _, path := range []string{"/ops/nope.js", "/ops/index.html", "/ops/..%2fedge.go"} {
			wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: path}), http.StatusNotFound, "not_found")
		}
	})

	// Last: it leaves the member without its memberinfo actor.
	t.Run("cluster_reports_a_member_that_does_not_answer_unreachable", func(t *testing.T) {
		m := h.Shop.Members[0]
		system := m.System()
		if err := system.Root.StopFuture(actor.NewPID(system.Address(), memberinfo.Name)).Wait(); err != nil {
			t.Fatal(err)
		}
		v := readClusterView(t, h, admin)
		if len(v.Members) != 1 {
			t.Fatalf("members = %+v, want the listed member", v.Members)
		}
		got := v.Members[0]
		if got.ID != m.ID() || got.Status != "unreachable" || got.Activations != nil {
			t.Errorf("member = %+v, want %s unreachable without activations", got, m.ID())
		}
		// Its kinds still come from the membership.
		if diff := cmp.Diff([]string{"cart", "inventory", "order", "promo"}, got.Kinds); diff != "" {
			t.Errorf("kinds (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int64{"cart": 0, "inventory": 0, "order": 0, "promo": 0}, v.Totals); diff != "" {
			t.Errorf("totals without an answering member (-want +got):\n%s", diff)
		}
	})

	t.Run("openapi_describes_the_cluster_view", func(t *testing.T) {
		var doc struct {
			Paths map[string]map[string]any `json:"paths"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"}), http.StatusOK, &doc)
		if _, ok := doc.Paths[clusterPath]["get"]; !ok {
			t.Errorf("openapi.json has no GET %s", clusterPath)
		}
	})
}

// TestClusterOpsView: with three members every member answers, and the view adds
// up to what the members themselves count.
func TestClusterOpsView(t *testing.T) {
	shoptest.MultiMember(t)
	h := shoptest.Start(t, 3)
	admin := h.Admin()
	const carts = 12
	fillCarts(t, h, carts)

	v := readClusterView(t, h, admin)
	var wantIDs, gotIDs []string
	for _, m := range h.Shop.Members {
		wantIDs = append(wantIDs, m.ID())
	}
	slices.Sort(wantIDs)
	sum := map[string]int64{}
	for _, m := range v.Members {
		gotIDs = append(gotIDs, m.ID)
		if m.Status != "up" {
			t.Errorf("member %s at %s is %q, want up", m.ID, m.Address, m.Status)
		}
		for kind, n := range m.Activations {
			sum[kind] += n
		}
	}
	if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
		t.Errorf("member ids, sorted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sum, v.Totals); diff != "" {
		t.Errorf("totals differ from the members' sum (-sum +totals):\n%s", diff)
	}
	// Grains stay active for the idle timeout (minutes), so the members' own counts
	// are those of the view.
	direct := map[string]int64{}
	for _, m := range h.Shop.Members {
		for kind, n := range m.ActivationCounts() {
			direct[kind] += int64(n)
		}
	}
	if diff := cmp.Diff(direct, v.Totals); diff != "" {
		t.Errorf("totals differ from the members' own counts (-members +view):\n%s", diff)
	}
	if v.Totals["cart"] < carts {
		t.Errorf("cart activations = %d, want at least the %d carts filled", v.Totals["cart"], carts)
	}
}
