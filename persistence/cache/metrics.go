package cache

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cache's Prometheus series. A nil *Metrics records nothing, so
// every user may take one optionally.
type Metrics struct {
	requests       *prometheus.CounterVec
	local          *prometheus.CounterVec
	degraded       prometheus.Gauge
	publishDropped prometheus.Counter
}

// The results of a cached read.
const (
	resultHit   = "hit"
	resultMiss  = "miss"
	resultError = "error"
	// resultBypass: an in-process layer could not be trusted (its invalidations
	// could go unheard) and the read went to the layer below.
	resultBypass = "bypass"
)

// The labels of the in-process layers' reads.
const (
	// LocalSession is the in-process layer of authentication (Sessions).
	LocalSession = "session"
	// LocalPhones and LocalPages are the edge's views of phone details and of
	// catalog pages (Views).
	LocalPhones = "phone_view"
	LocalPages  = "page_view"
)

// NewMetrics registers the cache series on reg (nil: not registered). Registering
// twice on one registry reuses the series already there; any other registration
// failure is a programming error and panics, as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_cache_requests_total",
			Help: "Cached reads by cache (catalog, session) and result (hit, miss, error: served from the store), behind the in-process layers (phoneshop_cache_local_requests_total).",
		}, []string{"cache", "result"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "phoneshop_cache_degraded",
			Help: "1 while the cache server is unreachable and reads go to the store.",
		}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phoneshop_cache_local_requests_total",
			Help: "Reads of the in-process layers in front of the cache by layer (session, phone_view, page_view) and result (hit; miss: read through the cache; bypass: not trusted while its invalidations could go unheard, read through the cache).",
		}, []string{"cache", "result"}),
		publishDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "phoneshop_cache_publish_dropped_total",
			Help: "Stock level updates dropped because the publisher's queue was full.",
		}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.local = register(reg, m.local)
		m.degraded = register(reg, m.degraded)
		m.publishDropped = register(reg, m.publishDropped)
	}
	for _, c := range []string{"catalog", "session"} {
		for _, r := range []string{resultHit, resultMiss, resultError} {
			m.requests.WithLabelValues(c, r)
		}
	}
	for _, c := range []string{LocalSession, LocalPhones, LocalPages} {
		for _, r := range []string{resultHit, resultMiss, resultBypass} {
			m.local.WithLabelValues(c, r)
		}
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		panic(err)
	}
	return c
}

// SetDegraded sets the degraded gauge; persistence/redis calls it from its breaker.
func (m *Metrics) SetDegraded(degraded bool) {
	if m == nil {
		return
	}
	if degraded {
		m.degraded.Set(1)
	} else {
		m.degraded.Set(0)
	}
}

func (m *Metrics) request(cache, result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(cache, result).Inc()
}

func (m *Metrics) localRead(layer, result string) {
	if m == nil {
		return
	}
	m.local.WithLabelValues(layer, result).Inc()
}

func (m *Metrics) dropped() {
	if m == nil {
		return
	}
	m.publishDropped.Inc()
}
