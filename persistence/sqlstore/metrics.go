package sqlstore

import "github.com/prometheus/client_golang/prometheus"

// BatchMetrics are the Prometheus series of group commit. Its Observe is a
// GroupCommit's Observe hook.
type BatchMetrics struct {
	writes, latency prometheus.Histogram
	errors, splits  prometheus.Counter
}

// NewBatchMetrics registers the group-commit series on reg.
func NewBatchMetrics(reg prometheus.Registerer) *BatchMetrics {
	m := &BatchMetrics{
		writes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "phoneshop_store_batch_writes", Help: "Grain snapshot writes carried by one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "phoneshop_store_batch_duration_seconds", Help: "Duration of one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoneshop_store_batch_failures_total", Help: "Group-commit transactions that failed (every write in them failed).",
		}),
		splits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoneshop_store_batch_splits_total",
			Help: "Group-commit transactions a fence split: another activation had moved a grain on, so the batch was written a write at a time.",
		}),
	}
	reg.MustRegister(m.writes, m.latency, m.errors, m.splits)
	return m
}

// Observe counts one batch.
func (m *BatchMetrics) Observe(b Batch) {
	if b.Err != nil {
		m.errors.Inc()
		return
	}
	if b.Split {
		m.splits.Inc()
	}
	m.writes.Observe(float64(b.Writes))
	m.latency.Observe(b.Elapsed.Seconds())
}
