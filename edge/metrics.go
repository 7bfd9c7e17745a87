package edge

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the edge's HTTP instruments: Prometheus series for /metrics, and the
// typed counts the ops dashboard shows (Counts). The grain calls, orders and store
// batches are counted by the packages that make them (grain/call, actors/order,
// persistence/sqlstore).
type Metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	checkouts *prometheus.CounterVec

	// What the dashboard shows, kept beside the series rather than read back out of
	// the registry by name.
	served, serverErrors atomic.Int64
	mu                   sync.Mutex
	outcomes             map[string]int64
}

// NewMetrics registers the edge's instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "phoneshop_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_http_checkouts_total",
			Help: "Checkout requests answered by this edge, by outcome: confirmed, replayed, or the API error code.",
		}, []string{"outcome"}),
		outcomes: map[string]int64{},
	}
	// The outcomes the ops dashboard shows exist from the start, at 0.
	for _, outcome := range []string{checkoutConfirmed, checkoutReplayed, codeOutOfStock} {
		m.checkouts.WithLabelValues(outcome)
		m.outcomes[outcome] = 0
	}
	reg.MustRegister(m.requests, m.latency, m.checkouts)
	return m
}

func (m *Metrics) observeRequest(method, route string, status int, elapsed time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.latency.WithLabelValues(method, route).Observe(elapsed.Seconds())
	if dashboardRoutes[route] {
		return
	}
	m.served.Add(1)
	if strings.HasPrefix(code, "5") {
		m.serverErrors.Add(1)
	}
}

// Checkout outcomes that are not errors.
const (
	checkoutConfirmed = "confirmed"
	checkoutReplayed  = "replayed"
)

// observeCheckout counts the answer to a checkout request. It is counted at the
// edge, unlike the orders series, which counts on the member hosting the order
// grain: a cluster edge hosts none.
func (m *Metrics) observeCheckout(status int, err error) {
	outcome := checkoutConfirmed
	switch {
	case err != nil:
		outcome = GrainOutcome(err)
	case status == http.StatusOK:
		outcome = checkoutReplayed
	}
	m.checkouts.WithLabelValues(outcome).Inc()
	m.mu.Lock()
	m.outcomes[outcome]++
	m.mu.Unlock()
}

// counts fills e with what this edge served, apart from the dashboard's own routes.
func (m *Metrics) counts(e *edgeResponse) {
	e.RequestsTotal, e.ServerErrorsTotal = m.served.Load(), m.serverErrors.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	e.Checkouts = make(map[string]int64, len(m.outcomes))
	for outcome, n := range m.outcomes {
		e.Checkouts[outcome] = n
	}
}

// GrainOutcome names a failed grain call by the API error code its answer would
// carry: the grain-call series (call.NewMetrics) and the checkouts read alike.
func GrainOutcome(err error) string {
	if ae, _ := toAPIError(err); ae != nil {
		return ae.Code
	}
	return codeInternal
}
