package order

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the checkouts the order grains of one process ran, and the sagas
// they parked. Its Placed and Parked are the Deps hooks of the same names.
type Metrics struct {
	orders    *prometheus.CounterVec
	parked    prometheus.Counter
	rounds    *prometheus.CounterVec
	confirmed *prometheus.CounterVec
}

// NewMetrics registers the orders series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_orders_total", Help: "Checkouts by outcome: confirmed, out_of_stock, price_changed, limit_exceeded, failed.",
		}, []string{"outcome"}),
		parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoneshop_order_sagas_parked_total",
			Help: "Order sagas parked in needs_attention after a step failed for a reason no retry cures (GET /api/v1/ops/orders?status=needs_attention lists them).",
		}),
	}
	m.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoneshop_checkout_durable_rounds_total",
		Help: "Durable rounds (writes waited for one after another) before the answers of confirmed checkouts, by path: " +
			"born (one SKU, born in its sale) or saga. Divided by the confirmed checkouts of the path: rounds per order.",
	}, []string{"path"})
	m.confirmed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoneshop_checkout_confirmed_total",
		Help: "Confirmed checkouts by path: born (one SKU, born in its sale) or saga.",
	}, []string{"path"})
	reg.MustRegister(m.orders, m.parked, m.rounds, m.confirmed)
	return m
}

// Parked counts one saga parked.
func (m *Metrics) Parked() { m.parked.Inc() }

// Placed counts one checkout's outcome.
func (m *Metrics) Placed(outcome string) { m.orders.WithLabelValues(outcome).Inc() }

// Rounds counts the durable rounds one confirmed checkout of path (born, saga)
// waited for before its answer.
func (m *Metrics) Rounds(path string, n int) {
	m.rounds.WithLabelValues(path).Add(float64(n))
	m.confirmed.WithLabelValues(path).Inc()
}
