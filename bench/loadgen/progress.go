package loadgen

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is told how a run advances. Add is called from many goroutines at
// once.
type Progress interface {
	// Start begins a run of total tasks; total is -1 when it is not known
	// in advance (a run bounded by time only).
	Start(total int64, label string)
	Add(n int64)
	Finish()
}

// Quiet is a Progress that shows nothing.
var Quiet Progress = quietProgress{}

type quietProgress struct{}

func (quietProgress) Start(int64, string) {}
func (quietProgress) Add(int64)           {}
func (quietProgress) Finish()             {}

// barRefresh is how often the bar is redrawn. Workers only bump a counter;
// redrawing on every task would serialise them on the bar's lock.
const barRefresh = 150 * time.Millisecond

// NewBar returns a Progress that draws a progress bar with the task rate on
// w, or Quiet when enabled is false.
func NewBar(w io.Writer, enabled bool) Progress {
	if !enabled {
		return Quiet
	}
	return &barProgress{w: w}
}

type barProgress struct {
	w    io.Writer
	done atomic.Int64

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	stop chan struct{}
	wg   sync.WaitGroup
}

func (b *barProgress) Start(total int64, label string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked()
	b.done.Store(0)
	if total <= 0 {
		total = -1
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("req"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(total > 0),
		// The bar's own spinner goroutine would write to w behind our
		// back and outlive the run; the ticker below redraws instead.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	stop := make(chan struct{})
	b.bar, b.stop = bar, stop
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(barRefresh)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = bar.Set64(b.done.Load())
			}
		}
	}()
}

func (b *barProgress) Add(n int64) { b.done.Add(n) }

func (b *barProgress) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finishLocked()
}

func (b *barProgress) finishLocked() {
	if b.bar == nil {
		return
	}
	close(b.stop)
	b.wg.Wait()
	// Drawing errors only mean the terminal went away; the run's results
	// matter more than its progress bar.
	_ = b.bar.Set64(b.done.Load())
	_ = b.bar.Exit()
	_, _ = fmt.Fprintln(b.w)
	b.bar, b.stop = nil, nil
}
