package main

import (
	"context"
	"fmt"

	"phoneshop/bench/loadgen"
	"phoneshop/bench/scenario"
)

// sweep checks out through the shop's flash sale and through the classic checkout
// at each of cfg.SweepLevels concurrent shoppers, so the report shows where each
// design stops scaling. Every step is a sale of its own: fresh shoppers with the
// hot phone in their carts and the stock for all of them (a shopper who checked out
// once would replay its order). A step has at least twice as many orders as
// concurrent shoppers: with one wave only, the figure would be that of a single
// burst, not of the closed loop. It returns the table's points and the runs with
// their checks.
func sweep(ctx context.Context, cfg Config, shop scenario.Remote, hot string, classic peer, progress func() loadgen.Progress) ([]loadgen.SweepPoint, []loadgen.Run, error) {
	var points []loadgen.SweepPoint
	var runs []loadgen.Run
	for _, shoppers := range cfg.SweepLevels {
		if shoppers < 1 {
			return nil, nil, fmt.Errorf("sweep: %d shoppers", shoppers)
		}
		orders := max(cfg.SweepOrders, 2*shoppers)
		users, err := shop.Shoppers(ctx, orders, cfg.Concurrency)
		if err != nil {
			return nil, nil, err
		}
		if err := shop.Restock(ctx, hot, int64(orders)); err != nil {
			return nil, nil, err
		}
		if err := shop.PrepareFlash(ctx, users, hot, cfg.Concurrency); err != nil {
			return nil, nil, err
		}
		before, err := shop.StockLevel(ctx, hot)
		if err != nil {
			return nil, nil, err
		}
		// A client whose pool keeps a connection for every shopper, so that 1,024
		// of them do not reconnect at every request; closed after the step.
		client := loadgen.NewClient(shoppers)
		atLevel := shop
		atLevel.Client = client
		flash := atLevel.Flash(ctx, users, hot, before, shoppers, 0, progress())
		flashSum := flash.Stats.Summary()
		runs = append(runs, loadgen.Run{Name: fmt.Sprintf("sweep: flash sale, %d shoppers", shoppers), Scenario: "flash", Mode: "closed",
			Concurrency: shoppers, Summary: flashSum, Checks: flash.Checks})
		points = append(points, loadgen.SweepPoint{Design: "flash sale", Concurrency: shoppers, Orders: int64(len(flash.Confirmed)),
			OrdersPerSecond: float64(len(flash.Confirmed)) / flashSum.Elapsed.Seconds(), P99: flashSum.Ops["checkout"].P99,
			ChecksOK: checksOK(flash.Checks)})

		stats, placed, checks, err := classic.checkouts(ctx, client, shoppers, int64(orders), progress())
		client.CloseIdleConnections()
		if err != nil {
			return nil, nil, err
		}
		sum := stats.Summary()
		runs = append(runs, loadgen.Run{Name: fmt.Sprintf("sweep: %s, %d shoppers", classic.name, shoppers), Scenario: "baseline", Mode: "closed",
			Concurrency: shoppers, Summary: sum, Checks: checks})
		points = append(points, loadgen.SweepPoint{Design: "classic checkout", Concurrency: shoppers, Orders: placed,
			OrdersPerSecond: float64(placed) / sum.Elapsed.Seconds(), P99: sum.Ops["checkout"].P99, ChecksOK: checksOK(checks)})
	}
	return points, runs, nil
}

func checksOK(checks []loadgen.Check) bool {
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return true
}
