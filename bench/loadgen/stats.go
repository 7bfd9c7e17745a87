// Package loadgen drives load at the shop and measures it: closed loop at a
// concurrency, open loop at a target rate, HDR latency histograms per
// operation, errors by API error code, reports in JSON and Markdown.
package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Names the package gives to outcomes it makes up itself.
const (
	// OpDropped is the operation an open-loop run records for a task it did
	// not start because MaxInFlight tasks were already outstanding.
	OpDropped = "dropped"
	// CodeOverload is the error code of a dropped task.
	CodeOverload = "overload"
	// CodeTransport is the error code of a task that got no HTTP response.
	CodeTransport = "transport"
)

// The histogram's range: latencies are recorded in microseconds and clamped
// into it, so a pathological 5-minute stall still counts, as 60 s.
const (
	histLowest  = 1
	histHighest = 60_000_000
	histSigFigs = 3
)

// Outcome is what one task did.
type Outcome struct {
	Op     string // operation name, e.g. "checkout"
	Status int    // HTTP status; 0 when there was no response
	Code   string // API error code from {"error":{"code":...}}; "" on success
	Err    error  // transport error
}

// Failed reports whether the outcome counts as an error: a transport error,
// an HTTP status of 400 or more, or an error code.
func (o Outcome) Failed() bool {
	return o.Err != nil || o.Status >= 400 || o.Code != ""
}

// errorCode is the code a failed outcome is counted under.
func (o Outcome) errorCode() string {
	switch {
	case o.Code != "":
		return o.Code
	case o.Err != nil:
		return CodeTransport
	default:
		return httpStatusCode(o.Status)
	}
}

// httpStatusCode is the code of an error response that did not carry one.
func httpStatusCode(status int) string { return fmt.Sprintf("http_%d", status) }

// Task performs one operation against the system under test.
type Task func(ctx context.Context) Outcome

// Stats accumulates outcomes and latencies per operation. It is safe for
// concurrent use; create one with NewStats.
type Stats struct {
	mu    sync.Mutex
	start time.Time
	end   time.Time
	ops   map[string]*opStats
	total *opStats
}

type opStats struct {
	hist         *hdrhistogram.Histogram
	count        int64
	errors       int64
	errorsByCode map[string]int64
}

func newOpStats() *opStats {
	return &opStats{
		hist:         hdrhistogram.New(histLowest, histHighest, histSigFigs),
		errorsByCode: map[string]int64{},
	}
}

// NewStats returns empty statistics whose clock starts now.
func NewStats() *Stats {
	return &Stats{start: time.Now(), ops: map[string]*opStats{}, total: newOpStats()}
}

// Stop freezes the end of the measured interval; until it is called Summary
// measures up to the moment it is called.
func (s *Stats) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end.IsZero() {
		s.end = time.Now()
	}
}

// Record counts one outcome and its latency.
func (s *Stats) Record(o Outcome, latency time.Duration) {
	s.record(o, latency, true)
}

// recordDropped counts a task that never ran; it has no latency, so it stays
// out of the histograms and only shows up as an error.
func (s *Stats) recordDropped() {
	s.record(Outcome{Op: OpDropped, Code: CodeOverload}, 0, false)
}

func (s *Stats) record(o Outcome, latency time.Duration, hasLatency bool) {
	us := latency.Microseconds()
	us = max(histLowest, min(histHighest, us))
	failed := o.Failed()
	var code string
	if failed {
		code = o.errorCode()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	op := s.ops[o.Op]
	if op == nil {
		op = newOpStats()
		s.ops[o.Op] = op
	}
	for _, st := range []*opStats{op, s.total} {
		st.count++
		if hasLatency {
			// Cannot fail: us is clamped into the histogram's range.
			_ = st.hist.RecordValue(us)
		}
		if failed {
			st.errors++
			st.errorsByCode[code]++
		}
	}
}

// Summary is the digest of a run.
type Summary struct {
	Elapsed time.Duration        `json:"elapsed_ms"`
	Ops     map[string]OpSummary `json:"ops"`
	Total   OpSummary            `json:"total"`
}

// OpSummary is the digest of one operation, or of all of them. Latencies come
// from the HDR histogram, so they are accurate to 3 significant figures.
type OpSummary struct {
	Count        int64            `json:"count"`
	Errors       int64            `json:"errors"`
	ErrorsByCode map[string]int64 `json:"errors_by_code"`
	// PerSecond is the rate of tasks that ran; dropped tasks are left out.
	PerSecond float64       `json:"per_second"`
	P50       time.Duration `json:"p50_ms"`
	P95       time.Duration `json:"p95_ms"`
	P99       time.Duration `json:"p99_ms"`
	Max       time.Duration `json:"max_ms"`
	Mean      time.Duration `json:"mean_ms"`
}

// Summary digests what has been recorded so far.
func (s *Stats) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.end
	if end.IsZero() {
		end = time.Now()
	}
	elapsed := end.Sub(s.start)
	sum := Summary{
		Elapsed: elapsed,
		Ops:     make(map[string]OpSummary, len(s.ops)),
		Total:   s.total.summary(elapsed),
	}
	for name, op := range s.ops {
		sum.Ops[name] = op.summary(elapsed)
	}
	return sum
}

func (st *opStats) summary(elapsed time.Duration) OpSummary {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	sum := OpSummary{
		Count:        st.count,
		Errors:       st.errors,
		ErrorsByCode: make(map[string]int64, len(st.errorsByCode)),
	}
	for code, n := range st.errorsByCode {
		sum.ErrorsByCode[code] = n
	}
	if st.hist.TotalCount() == 0 {
		return sum
	}
	if elapsed > 0 {
		sum.PerSecond = float64(st.hist.TotalCount()) / elapsed.Seconds()
	}
	sum.P50 = us(st.hist.ValueAtQuantile(50))
	sum.P95 = us(st.hist.ValueAtQuantile(95))
	sum.P99 = us(st.hist.ValueAtQuantile(99))
	sum.Max = us(st.hist.Max())
	sum.Mean = time.Duration(st.hist.Mean() * float64(time.Microsecond))
	return sum
}
