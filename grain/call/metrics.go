package call

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the grain calls of one process: Prometheus series for /metrics, and
// a typed total for the ops dashboard. Register it as a Policy's Observe hook.
type Metrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	outcome func(error) string
	total   atomic.Int64
}

// NewMetrics registers the grain-call series on reg. outcome names a failed call's
// outcome label (the edge's API error code, so that the series and the answers the
// shoppers got read alike); a call that succeeded is "ok".
func NewMetrics(reg prometheus.Registerer, outcome func(error) string) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_grain_calls_total", Help: "Grain calls by kind, method and outcome (ok or the error reason).",
		}, []string{"kind", "method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "phoneshop_grain_call_duration_seconds", Help: "Grain call latency by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"kind"}),
		outcome: outcome,
	}
	reg.MustRegister(m.calls, m.latency)
	return m
}

// Observe counts one call (a Policy's Observe hook).
func (m *Metrics) Observe(kind, method string, elapsed time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = m.outcome(err)
	}
	m.calls.WithLabelValues(kind, method, outcome).Inc()
	m.latency.WithLabelValues(kind).Observe(elapsed.Seconds())
	m.total.Add(1)
}

// Total is how many grain calls the process has made.
func (m *Metrics) Total() int64 { return m.total.Load() }
