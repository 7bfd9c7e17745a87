package edge

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the shop's Prometheus instruments, on a registry of its own (never
// the global one, which protoactor's default provider would also grab).
type Metrics struct {
	requests                 *prometheus.CounterVec
	latency                  *prometheus.HistogramVec
	grainCalls               *prometheus.CounterVec
	grainLatency             *prometheus.HistogramVec
	orders                   *prometheus.CounterVec
	checkouts                *prometheus.CounterVec
	batchWrites              prometheus.Histogram
	batchLatency             prometheus.Histogram
	batchErrors, batchSplits prometheus.Counter
}

// NewMetrics registers the shop's instruments and the Go/process collectors on reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "phoneshop_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
		grainCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_grain_calls_total", Help: "Grain calls by kind, method and outcome (ok or the error reason).",
		}, []string{"kind", "method", "outcome"}),
		grainLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "phoneshop_grain_call_duration_seconds", Help: "Grain call latency by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"kind"}),
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_orders_total", Help: "Checkouts by outcome: confirmed, out_of_stock, failed.",
		}, []string{"outcome"}),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_http_checkouts_total",
			Help: "Checkout requests answered by this edge, by outcome: confirmed, replayed, or the API error code.",
		}, []string{"outcome"}),
	}
	// The outcomes the ops dashboard shows exist from the start, at 0.
	for _, outcome := range []string{checkoutConfirmed, checkoutReplayed, codeOutOfStock} {
		m.checkouts.WithLabelValues(outcome)
	}
	m.batchWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "phoneshop_store_batch_writes", Help: "Grain snapshot writes carried by one group-commit transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.batchLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "phoneshop_store_batch_duration_seconds", Help: "Duration of one group-commit transaction.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	m.batchErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "phoneshop_store_batch_failures_total", Help: "Group-commit transactions that failed (every write in them failed).",
	})
	m.batchSplits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "phoneshop_store_batch_splits_total",
		Help: "Group-commit transactions a fence split: another activation had moved a grain on, so the batch was written a write at a time.",
	})
	reg.MustRegister(m.requests, m.latency, m.grainCalls, m.grainLatency, m.orders, m.checkouts, m.batchWrites, m.batchLatency, m.batchErrors, m.batchSplits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observeRequest(method, route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// ObserveGrainCall is a call.Policy's Observe hook.
func (m *Metrics) ObserveGrainCall(kind, method string, elapsed time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = grainOutcome(err)
	}
	m.grainCalls.WithLabelValues(kind, method, outcome).Inc()
	m.grainLatency.WithLabelValues(kind).Observe(elapsed.Seconds())
}

// ObserveBatch is told how a group-commit transaction went (sqlstore.GroupCommit's
// Observe hook): split says a fence refused a write and the batch was written a
// write at a time.
func (m *Metrics) ObserveBatch(writes int, elapsed time.Duration, split bool, err error) {
	if err != nil {
		m.batchErrors.Inc()
		return
	}
	if split {
		m.batchSplits.Inc()
	}
	m.batchWrites.Observe(float64(writes))
	m.batchLatency.Observe(elapsed.Seconds())
}

// Checkout outcomes that are not errors.
const (
	checkoutConfirmed = "confirmed"
	checkoutReplayed  = "replayed"
)

// observeCheckout counts the answer to a checkout request. It is counted at the
// edge, unlike ObserveOrder, which counts on the member hosting the order grain:
// a cluster edge hosts none.
func (m *Metrics) observeCheckout(status int, err error) {
	outcome := checkoutConfirmed
	switch {
	case err != nil:
		outcome = grainOutcome(err)
	case status == http.StatusOK:
		outcome = checkoutReplayed
	}
	m.checkouts.WithLabelValues(outcome).Inc()
}

// ObserveOrder counts a checkout's outcome.
func (m *Metrics) ObserveOrder(outcome string) { m.orders.WithLabelValues(outcome).Inc() }

func grainOutcome(err error) string {
	if ae, _ := toAPIError(err); ae != nil {
		return ae.Code
	}
	return codeInternal
}
