package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"phoneshop/bench/baseline"
	"phoneshop/bench/loadgen"
)

// peer is a baseline checkout the shop's is compared with, served by a
// baseline.Server in this process.
type peer struct {
	name   string
	server *baseline.Server
	// url is the checkout route's URL.
	url string
	// sku is the peer's own SKU, so that no run sees another's stock.
	sku string
	// redis is where the stock lives for the Redis way; "" for the classic
	// checkout, whose stock is in MySQL.
	redis baseline.Redis
}

// checkouts places orders orders through the peer, concurrency at a time, each a
// new order of one unit of a SKU that has exactly that many, and checks that
// every order row took exactly one unit. It returns the orders placed.
func (p peer) checkouts(ctx context.Context, client *http.Client, concurrency int, orders int64, progress loadgen.Progress) (*loadgen.Stats, int64, []loadgen.Check, error) {
	if err := p.server.SetStock(ctx, p.sku, orders); err != nil {
		return nil, 0, nil, err
	}
	var next atomic.Int64
	stats := loadgen.RunClosed(ctx, loadgen.Closed{Concurrency: concurrency, Requests: orders}, func(int) loadgen.Task {
		return func(ctx context.Context) loadgen.Outcome {
			n := next.Add(1)
			body := fmt.Sprintf(`{"sku":%q,"account_id":"acc_%d","order_id":"ord_%d","quantity":1}`, p.sku, n, n)
			return loadgen.Do(ctx, client, "checkout", http.MethodPost, p.url, "", []byte(body), nil)
		}
	}, progress)
	counts, err := p.server.Counts(ctx, p.sku)
	left := counts.MySQL
	if p.redis != "" {
		left = counts.Redis[p.redis]
	}
	checks := []loadgen.Check{{Name: "orders = units taken, no oversell", OK: err == nil && counts.Orders == orders-left && left >= 0,
		Detail: fmt.Sprintf("%d orders, %d units left, err %v", counts.Orders, left, err)}}
	return stats, counts.Orders, checks, nil
}
