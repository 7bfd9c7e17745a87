package loadgen

import (
	"encoding/json"
	"math"
	"time"
)

// Durations travel in JSON as float milliseconds, which is what a reader of a
// benchmark report compares; nanosecond integers would only get in the way.

func toMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMillis(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

type opSummaryJSON struct {
	Count        int64            `json:"count"`
	Errors       int64            `json:"errors"`
	ErrorsByCode map[string]int64 `json:"errors_by_code"`
	PerSecond    float64          `json:"per_second"`
	P50          float64          `json:"p50_ms"`
	P95          float64          `json:"p95_ms"`
	P99          float64          `json:"p99_ms"`
	Max          float64          `json:"max_ms"`
	Mean         float64          `json:"mean_ms"`
}

// MarshalJSON writes the latencies as float milliseconds.
func (o OpSummary) MarshalJSON() ([]byte, error) {
	return json.Marshal(opSummaryJSON{
		Count:        o.Count,
		Errors:       o.Errors,
		ErrorsByCode: o.ErrorsByCode,
		PerSecond:    o.PerSecond,
		P50:          toMillis(o.P50),
		P95:          toMillis(o.P95),
		P99:          toMillis(o.P99),
		Max:          toMillis(o.Max),
		Mean:         toMillis(o.Mean),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (o *OpSummary) UnmarshalJSON(data []byte) error {
	var j opSummaryJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*o = OpSummary{
		Count:        j.Count,
		Errors:       j.Errors,
		ErrorsByCode: j.ErrorsByCode,
		PerSecond:    j.PerSecond,
		P50:          fromMillis(j.P50),
		P95:          fromMillis(j.P95),
		P99:          fromMillis(j.P99),
		Max:          fromMillis(j.Max),
		Mean:         fromMillis(j.Mean),
	}
	return nil
}

type summaryJSON struct {
	Elapsed float64              `json:"elapsed_ms"`
	Ops     map[string]OpSummary `json:"ops"`
	Total   OpSummary            `json:"total"`
}

// MarshalJSON writes Elapsed as float milliseconds.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(summaryJSON{Elapsed: toMillis(s.Elapsed), Ops: s.Ops, Total: s.Total})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Summary) UnmarshalJSON(data []byte) error {
	var j summaryJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*s = Summary{Elapsed: fromMillis(j.Elapsed), Ops: j.Ops, Total: j.Total}
	return nil
}

// sweepPointJSON is SweepPoint with P99 in float milliseconds; the alias keeps the
// other fields' tags without the methods.
type sweepPointJSON struct {
	sweepPointFields
	P99 float64 `json:"p99_ms"`
}

type sweepPointFields SweepPoint

// MarshalJSON writes P99 as float milliseconds.
func (p SweepPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(sweepPointJSON{sweepPointFields: sweepPointFields(p), P99: toMillis(p.P99)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *SweepPoint) UnmarshalJSON(data []byte) error {
	var j sweepPointJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*p = SweepPoint(j.sweepPointFields)
	p.P99 = fromMillis(j.P99)
	return nil
}
