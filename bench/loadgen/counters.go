package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Counter is how much one counter grew over a phase. Source says where it was
// read (the shop's /metrics, MariaDB's SHOW GLOBAL STATUS).
type Counter struct {
	Name   string  `json:"name"`
	Source string  `json:"source"`
	Total  float64 `json:"total"`
}

// OrderCost is what a phase's confirmed orders cost in writes and statements: the
// counters' growth over the phase and the orders they were spent on.
type OrderCost struct {
	Design string `json:"design"`
	Orders int64  `json:"orders"`
	// Seconds is the window the counters were read over: the phase's load and the
	// writes it left behind (Note says how long those took).
	Seconds  float64   `json:"seconds"`
	Counters []Counter `json:"counters"`
	// Missing names the counters asked for that the source does not have.
	Missing []string `json:"missing,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// PerOrder is a counter's growth per confirmed order, and whether it was counted
// in this phase at all.
func (c OrderCost) PerOrder(name string) (float64, bool) {
	for _, k := range c.Counters {
		if k.Name == name {
			return k.Total / float64(max(c.Orders, 1)), true
		}
	}
	return 0, false
}

// Histogram is the sum and count of a Prometheus histogram.
type Histogram struct {
	Sum   float64
	Count uint64
}

// ScrapeHistogram reads the histogram named name (without labels) from the
// Prometheus text endpoint at url.
func ScrapeHistogram(ctx context.Context, client *http.Client, url, name string) (Histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Histogram{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Histogram{}, fmt.Errorf("loadgen: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Histogram{}, fmt.Errorf("loadgen: metrics at %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return Histogram{}, fmt.Errorf("loadgen: metrics at %s: %w", url, err)
	}
	family, ok := families[name]
	if !ok || family.GetType() != dto.MetricType_HISTOGRAM || len(family.GetMetric()) != 1 {
		return Histogram{}, fmt.Errorf("loadgen: metrics at %s: no histogram %s without labels", url, name)
	}
	h := family.GetMetric()[0].GetHistogram()
	return Histogram{Sum: h.GetSampleSum(), Count: h.GetSampleCount()}, nil
}

// ScrapeCounters reads the counters named in names from the Prometheus text
// endpoint at url, each summed over its labels, and the series of a counter with
// one label each as name{label="value"}; a counter the endpoint does not have is
// left out of the answer.
func ScrapeCounters(ctx context.Context, client *http.Client, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: metrics at %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("loadgen: metrics at %s: %w", url, err)
	}
	out := make(map[string]float64, len(names))
	for _, name := range names {
		family, ok := families[name]
		if !ok {
			continue
		}
		var sum float64
		for _, m := range family.GetMetric() {
			var v float64
			switch family.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			}
			sum += v
			if l := m.GetLabel(); len(l) == 1 {
				// One label: the series alone too, as name{label="value"}.
				out[fmt.Sprintf("%s{%s=%q}", name, l[0].GetName(), l[0].GetValue())] = v
			}
		}
		out[name] = sum
	}
	return out, nil
}

// StatusCounters are the MariaDB/MySQL status counters a phase reads: what kind of
// statements the server ran, and how often InnoDB synced its files (the durable
// cost). MariaDB 10.8 and later have no Innodb_os_log_fsyncs; their log syncs are
// in Innodb_data_fsyncs.
var StatusCounters = []string{
	"Questions", "Com_select", "Com_insert", "Com_update", "Com_delete",
	"Com_begin", "Com_commit", "Com_rollback", "Com_stmt_execute",
	"Innodb_data_fsyncs", "Innodb_os_log_fsyncs", "Innodb_log_writes",
}

// ReadStatus reads the server-wide status counters named in StatusCounters that the
// server has. It is one statement: Questions counts it.
func ReadStatus(ctx context.Context, db *sql.DB) (map[string]float64, error) {
	// The names are this package's constants, written into the statement so that it
	// is sent as one query, never prepared (a prepared statement is three).
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('"+strings.Join(StatusCounters, "','")+"')")
	if err != nil {
		return nil, fmt.Errorf("loadgen: status counters: %w", err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var name string
		var v float64
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("loadgen: status counters: %w", err)
		}
		out[name] = v
	}
	return out, rows.Err()
}
