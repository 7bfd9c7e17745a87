package shop_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/inventorypb"
	"phoneshop/protos/promopb"
)

// benchRuns counts the iterations of every run of one mode (b.Run runs it more than once).
var benchRuns atomic.Int64

// BenchmarkHotSKUSales measures durable sales per second on one SKU against
// MariaDB, with group commit (the grain answers many commands per write and the
// store puts queued writes in one transaction) and without (every change committed
// before the next command). Each iteration reserves a unit for a new order (a
// hold: answered at once, never written on its own), sells it and takes it back:
// two durable commands, answered only after their commit, and a snapshot and a
// ledger that stay the size a real checkout sees.
//
//	go test -run '^$' -bench HotSKU -benchtime 20000x ./shop/
func BenchmarkHotSKUSales(b *testing.B) {
	for _, mode := range []struct {
		name        string
		groupCommit bool
	}{{"unbatched", false}, {"batched", true}} {
		h := shoptest.Start(b, 1, func(c *config.Dev) {
			c.MySQLDSN = dbtest.MySQLDSN(b)
			c.GroupCommit = mode.groupCommit
		})
		c := h.Shop.Members[0].Cluster()
		const sku = "bench-hot-sku"
		inv := inventorypb.GetInventoryGrainClient(c, sku)
		if _, err := inv.Receive(&inventorypb.ReceiveRequest{RequestId: "bench", Quantity: 1_000_000}, cluster.WithTimeout(10*time.Second)); err != nil {
			b.Fatal(err)
		}
		benchRuns.Store(0)
		b.Run(mode.name, func(b *testing.B) {
			benchRuns.Add(int64(b.N))
			var seq atomic.Int64
			b.SetParallelism(32) // 64 concurrent shoppers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					order := fmt.Sprintf("ord_bench_%s_%d", mode.name, seq.Add(1))
					opt := cluster.WithTimeout(30 * time.Second)
					if _, err := inv.Reserve(&inventorypb.ReserveRequest{OrderId: order, Quantity: 1}, opt); err != nil {
						b.Error(err)
						return
					}
					if _, err := inv.Commit(&inventorypb.CommitRequest{OrderId: order}, opt); err != nil {
						b.Error(err)
						return
					}
					if _, err := inv.Return(&inventorypb.ReturnRequest{OrderId: order}, opt); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sales/s")
		})
		if mode.groupCommit {
			r := h.Do(shoptest.Request{Method: "GET", Path: "/metrics"})
			sum, count := metricValue(string(r.Body), "phoneshop_store_batch_writes_sum"), metricValue(string(r.Body), "phoneshop_store_batch_writes_count")
			if count > 0 {
				// Every write but the first Receive carries sales and returns.
				b.Logf("group commit: %d durable commands in %.0f snapshot writes (%.1f commands per write), in %.0f transactions",
					2*benchRuns.Load(), sum, float64(2*benchRuns.Load())/sum, count)
			}
		}
		l, err := inv.Level(&inventorypb.LevelRequest{}, cluster.WithTimeout(10*time.Second))
		if err != nil || l.Available != 1_000_000 || l.Reserved != 0 || l.Sold != 0 {
			b.Fatalf("after the benchmark: %v, %v; want every unit back", l, err)
		}
	}
}

// metricValue reads one sample of the Prometheus text format (0 when absent).
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// BenchmarkCampaignGrants measures durable discount grants per second on one
// campaign against MariaDB, with group commit and without: what a flash sale at a
// campaign's price asks of its promo grain beside the hot SKU's inventory grain.
// Each iteration grants a unit to a new order and returns it (two durable commands,
// like a checkout that takes the discount and a cancel that gives it back).
//
//	go test -run '^$' -bench CampaignGrants -benchtime 5000x ./shop/
func BenchmarkCampaignGrants(b *testing.B) {
	for _, mode := range []struct {
		name        string
		groupCommit bool
	}{{"unbatched", false}, {"batched", true}} {
		h := shoptest.Start(b, 1, func(c *config.Dev) {
			c.MySQLDSN = dbtest.MySQLDSN(b)
			c.GroupCommit = mode.groupCommit
		})
		admin := h.Admin()
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: map[string]any{
			"name": "Bench", "percent_off": 10, "brands": []string{"Google"},
			"starts_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"ends_at":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
		var created struct {
			ID string `json:"id"`
		}
		r.JSON(b, &created)
		if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + created.ID + "/launch", Token: admin}); r.Status != 200 {
			b.Fatalf("launch: %d %s", r.Status, r.Body)
		}
		camp := promopb.GetPromoGrainClient(h.Shop.Members[0].Cluster(), created.ID)
		b.Run(mode.name, func(b *testing.B) {
			var seq atomic.Int64
			b.SetParallelism(32) // 64 concurrent checkouts on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					order := fmt.Sprintf("ord_bench_%s_%d", mode.name, seq.Add(1))
					opt := cluster.WithTimeout(30 * time.Second)
					if _, err := camp.Grant(&promopb.GrantRequest{OrderId: order, Units: 1}, opt); err != nil {
						b.Error(err)
						return
					}
					if _, err := camp.Return(&promopb.ReturnGrantRequest{OrderId: order}, opt); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
		})
		v, err := camp.Get(&promopb.GetPromoRequest{}, cluster.WithTimeout(10*time.Second))
		if err != nil || v.DiscountedUnits != 0 || v.Orders != 0 {
			b.Fatalf("after the benchmark: %v, %v; want every grant returned", v, err)
		}
	}
}
