package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"time"

	"phoneshop/bench/loadgen"
)

// batchWritesMetric is the shop's histogram of grain snapshot writes per
// group-commit transaction (edge/metrics.go): its sum is the writes, its count the
// transactions.
const batchWritesMetric = "phoneshop_store_batch_writes"

// shopCounters are the shop's counters a phase's orders are charged with, by the
// name the report gives them: the durable rounds its checkouts waited for before
// their answers (actors/order), and the Go runtime's allocations.
var shopCounters = []struct{ family, metric, name string }{
	{roundsMetric, roundsMetric, "durable rounds before the answer"},
	{roundsMetric, roundsMetric + `{path="born"}`, roundsBorn},
	{roundsMetric, roundsMetric + `{path="saga"}`, roundsSaga},
	{confirmedMetric, confirmedMetric + `{path="born"}`, confirmedBorn},
	{confirmedMetric, confirmedMetric + `{path="saga"}`, confirmedSaga},
	{"go_memstats_mallocs_total", "go_memstats_mallocs_total", "heap allocations"},
	{"go_memstats_alloc_bytes_total", "go_memstats_alloc_bytes_total", "heap bytes allocated"},
}

// The shop's checkout paths' series (actors/order.Metrics), and their names in
// the report.
const (
	roundsMetric    = "phoneshop_checkout_durable_rounds_total"
	confirmedMetric = "phoneshop_checkout_confirmed_total"
	roundsBorn      = "durable rounds: orders born in their sale (one SKU)"
	roundsSaga      = "durable rounds: saga orders (several SKUs)"
	confirmedBorn   = "confirmed orders born in their sale"
	confirmedSaga   = "confirmed saga orders"
)

// Sources of the counters, as the report names them.
const (
	sourceShopMetrics = "the shop's /metrics"
	sourceStatus      = "MariaDB SHOW GLOBAL STATUS"
)

// Settling after a phase of the shop: its grain writes may go on after the last
// answer (an emptied cart need not be durable before it), and they are part of
// what the orders cost. The counters are read once the writes stop growing.
const (
	settlePoll = 100 * time.Millisecond
	settleMax  = 3 * time.Second
)

// meter reads the counters a phase's orders are charged with: MariaDB's status
// counters through loadgen's own connection, and for the shop's phases the
// shop's group-commit writes from its /metrics (metricsURL "" when not read).
type meter struct {
	client     *http.Client
	metricsURL string
	status     *sql.DB
}

// reading is the counters at one moment.
type reading struct {
	at     time.Time
	status map[string]float64
	writes loadgen.Histogram
	// counters are the shop's shopCounters, by metric name.
	counters map[string]float64
	shop     bool
}

// read reads the counters; shop says whether the shop's writes are read too.
func (m meter) read(ctx context.Context, shop bool) (reading, error) {
	r := reading{shop: shop && m.metricsURL != ""}
	if r.shop {
		var err error
		if r.writes, err = loadgen.ScrapeHistogram(ctx, m.client, m.metricsURL, batchWritesMetric); err != nil {
			return r, err
		}
		names := make([]string, len(shopCounters))
		for i, c := range shopCounters {
			names[i] = c.family
		}
		if r.counters, err = loadgen.ScrapeCounters(ctx, m.client, m.metricsURL, names...); err != nil {
			return r, err
		}
	}
	status, err := loadgen.ReadStatus(ctx, m.status)
	r.status, r.at = status, time.Now()
	return r, err
}

// cost reads the counters again and charges their growth since before to the
// phase's orders. For the shop it first waits, from loadEnd on, until the shop's
// writes stop growing (at most settleMax).
func (m meter) cost(ctx context.Context, design string, orders int64, before reading, loadEnd time.Time) (loadgen.OrderCost, error) {
	c := loadgen.OrderCost{Design: design, Orders: orders}
	var after reading
	var err error
	if before.shop {
		last := before.writes
		for {
			time.Sleep(settlePoll)
			w, err := loadgen.ScrapeHistogram(ctx, m.client, m.metricsURL, batchWritesMetric)
			if err != nil {
				return c, err
			}
			if w == last || time.Since(loadEnd) > settleMax {
				break
			}
			last = w
		}
	}
	if after, err = m.read(ctx, before.shop); err != nil {
		return c, err
	}
	c.Seconds = after.at.Sub(before.at).Seconds()
	if before.shop {
		writes, batches := after.writes.Sum-before.writes.Sum, float64(after.writes.Count-before.writes.Count)
		c.Counters = append(c.Counters,
			loadgen.Counter{Name: "grain snapshot writes", Source: sourceShopMetrics + ": " + batchWritesMetric + "_sum", Total: writes},
			loadgen.Counter{Name: "group-commit transactions", Source: sourceShopMetrics + ": " + batchWritesMetric + "_count", Total: batches})
		for _, k := range shopCounters {
			b, okBefore := before.counters[k.metric]
			a, okAfter := after.counters[k.metric]
			if !okAfter {
				c.Missing = append(c.Missing, k.metric)
				continue
			}
			if !okBefore {
				b = 0 // a series born during the phase
			}
			c.Counters = append(c.Counters, loadgen.Counter{Name: k.name, Source: sourceShopMetrics + ": " + k.metric, Total: a - b})
		}
		c.Note = fmt.Sprintf("%.1f grain snapshot writes per group-commit transaction; counted until %.1f s after the last answer, when the shop's writes stopped growing",
			writes/max(batches, 1), after.at.Sub(loadEnd).Seconds())
	}
	for _, name := range loadgen.StatusCounters {
		b, okBefore := before.status[name]
		a, okAfter := after.status[name]
		if !okBefore || !okAfter {
			c.Missing = append(c.Missing, name) // MariaDB 10.8 and later have no Innodb_os_log_fsyncs
			continue
		}
		delta := a - b
		if name == "Questions" {
			delta-- // the second reading's own statement
		}
		c.Counters = append(c.Counters, loadgen.Counter{Name: name, Source: sourceStatus, Total: delta})
	}
	return c, nil
}

// costNotes say what the counters include, under the table.
func costNotes() []string {
	return []string{
		"The MariaDB counters are server-wide: they count every client of the server over the window, not only the design under test. " +
			"This generator's own reads of them are left out (one statement at each end; nothing else of its own runs then). " +
			"During the shop's phase, dev's outbox relay (it polls the outbox while idle, then publishes the confirmation events) and its mailer " +
			"(one commit per mail) run too: their statements are part of what a confirmed order costs, but the mail of the last orders may fall after the window. " +
			"Anything else using the same server at the time (another test run) inflates them.",
		"Questions is every statement a client sent; Com_* count statements by kind (a multi-row INSERT is one); Com_begin and Com_commit count transactions; " +
			"Innodb_data_fsyncs counts InnoDB's fsync calls (MariaDB 10.8 and later count the redo log's there: they have no Innodb_os_log_fsyncs).",
	}
}
