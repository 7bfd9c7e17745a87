package order

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the checkouts the order grains of one process ran. Its Placed is
// the Deps.Placed hook.
type Metrics struct{ orders *prometheus.CounterVec }

// NewMetrics registers the orders series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{orders: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoneshop_orders_total", Help: "Checkouts by outcome: confirmed, out_of_stock, price_changed, limit_exceeded, failed.",
	}, []string{"outcome"})}
	reg.MustRegister(m.orders)
	return m
}

// Placed counts one checkout's outcome.
func (m *Metrics) Placed(outcome string) { m.orders.WithLabelValues(outcome).Inc() }
