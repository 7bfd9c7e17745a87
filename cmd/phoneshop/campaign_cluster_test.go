package main_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"phoneshop/internal/shoptest"
)

// TestCampaignShowsOnEveryEdge: a launch, a pause and an end made through
// one edge show in the phone details of every edge within 2 seconds (issue 10).
// Each edge is its own process with its own view of the live campaigns.
func TestCampaignShowsOnEveryEdge(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 2, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	first := c.Edge(0)
	admin := c.Admin(first)
	const phone, sku = "google-pixel-9", "google-pixel-9-128-obsidian"
	var created struct {
		ID string `json:"id"`
	}
	r := first.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: map[string]any{
		"name": "Every edge", "percent_off": 30, "skus": []string{sku},
		"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &created)

	// salePrice reads the variant's sale price on edge i (0: none).
	salePrice := func(i int) int64 {
		var p struct {
			Variants []struct {
				SKU            string `json:"sku"`
				SalePriceCents int64  `json:"sale_price_cents"`
			} `json:"variants"`
		}
		resp := c.Edge(i).Do(shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + phone})
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			t.Fatalf("phone on edge %d: %s", i, resp.Body)
		}
		for _, v := range p.Variants {
			if v.SKU == sku {
				return v.SalePriceCents
			}
		}
		t.Fatalf("edge %d: no variant %s", i, sku)
		return 0
	}
	// move makes the campaign move through edge `via` and waits until every edge
	// shows (sale) or stops showing (!sale) the discount.
	move := func(name string, via int, sale bool) {
		t.Helper()
		resp := c.Edge(via).Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + created.ID + "/" + name, Token: admin})
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, resp.Status, resp.Body)
		}
		answered := time.Now()
		for i := range c.Edges {
			for (salePrice(i) > 0) != sale {
				if time.Since(answered) > 2*time.Second {
					t.Fatalf("%s through edge %d: edge %d does not show it within 2 s", name, via, i)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		t.Logf("%s through edge %d: on every edge %s after the answer", name, via, time.Since(answered).Round(time.Millisecond))
	}
	move("launch", 0, true)
	if got, want := salePrice(1), int64(79900-23970); got != want {
		t.Errorf("sale price on edge 1 = %d, want %d", got, want)
	}
	move("pause", 1, false)
	move("launch", 1, true)
	move("end", 0, false)
}
