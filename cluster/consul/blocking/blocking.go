// Package blocking runs one Consul blocking query again and again, by the rules of
// Consul's documentation (api-docs/features/blocking): each query waits on the index
// of the last answer; an index that goes backwards starts the loop over from 0; an
// index under 1 is never waited on (it would not block); and the loop is rate limited,
// so that an answer that churns degrades into polling rather than a busy loop. The
// membership watch (cluster/consul) and the configuration watch (config/consulkv)
// both run on it.
package blocking

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"
)

// The defaults of a Loop's zero fields.
const (
	DefaultWait        = 10 * time.Second
	DefaultSlack       = 5 * time.Second
	DefaultRetryAfter  = time.Second
	DefaultMinInterval = time.Second
)

// burst is how many queries may follow early answers without waiting: the rate
// limit only starts when answers keep coming faster than MinInterval (the token
// bucket with a burst of 2 that Consul's documentation suggests).
const burst = 2

// Loop is one blocking query asked again and again. Query and Answer are required;
// the hooks are called on Run's goroutine.
type Loop[T any] struct {
	// Query asks Consul once with opts, whose WaitIndex, WaitTime and context the
	// loop sets, and returns the answer with its meta (Consul's index).
	Query func(opts *api.QueryOptions) (T, *api.QueryMeta, error)
	// Answer handles every successful answer, changed or not (a blocking query may
	// return at the end of its wait with nothing new). It returns false to end Run.
	Answer func(T) (more bool)
	// Failed is told of a failed query (not one cut short because ctx ended). The
	// loop then waits RetryAfter and reads afresh, from index 0: the agent may have
	// restarted, and an index of its previous life could hold the next query for
	// its whole wait.
	Failed func(error)
	// Reset, when set, is called whenever the loop starts over from index 0: after
	// Failed, and when Consul's index went backwards (its state was reset).
	Reset func()

	// Wait bounds one blocking query (DefaultWait when 0; Consul caps it at 10m).
	Wait time.Duration
	// Wake, when set, returns how soon the caller wants the next answer even if
	// nothing changes in Consul (a deadline of its own); 0 or less: no sooner than
	// Wait.
	Wake func() time.Duration
	// Slack is how much longer than its wait (and Consul's jitter of up to a
	// sixteenth of it) a query may go unanswered before the loop gives it up: a
	// stalled agent, or a dead host behind a half-open connection, never answers.
	// DefaultSlack when 0.
	Slack time.Duration
	// RetryAfter is the pause after a failed query (DefaultRetryAfter when 0).
	RetryAfter time.Duration
	// MinInterval is the rate limit of the queries that follow an early answer:
	// once the burst is spent, they start at most once per MinInterval
	// (DefaultMinInterval when 0).
	MinInterval time.Duration
}

// Run queries until ctx ends or Answer returns false.
func (l Loop[T]) Run(ctx context.Context) {
	l = l.withDefaults()
	limit := rate.NewLimiter(rate.Every(l.MinInterval), burst)
	var index, last uint64 // the next query's WaitIndex; the last answer's index
	// early: the last answer came back before its wait was up (something changed).
	// Only such queries spend the rate limit's tokens: a query that waited its whole
	// wait is already as slow as polling gets, and one that follows a change must go
	// at once, or the change after it (a member deregistered, then registered again
	// by its own refresh) could come and go unseen.
	early := false
	for ctx.Err() == nil {
		if early && limit.Wait(ctx) != nil {
			return // ctx ended, or will before the rate limit lets the next query go
		}
		wait := l.Wait
		if l.Wake != nil {
			if soon := l.Wake(); soon > 0 {
				wait = min(wait, soon)
			}
		}
		queryCtx, cancel := context.WithTimeout(ctx, wait+wait/16+l.Slack)
		asked := time.Now()
		answer, meta, err := l.Query((&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(queryCtx))
		cancel()
		early = time.Since(asked) < wait
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.Failed(err)
			index, last = 0, 0
			l.reset()
			select {
			case <-ctx.Done():
				return
			case <-time.After(l.RetryAfter):
			}
			continue
		}
		if meta.LastIndex < last {
			// Consul's state was reset (a restored snapshot, an agent that restarted,
			// the KV entry of the highest index removed): waiting on the old index
			// could miss updates for as long as it takes the new one to catch up.
			index, last = 0, 0
			l.reset()
			continue
		}
		last = meta.LastIndex
		// An index of 0 is a Consul bug, and a query on it would not block: 1 is
		// always safe to wait on.
		index = max(meta.LastIndex, 1)
		if !l.Answer(answer) {
			return
		}
	}
}

func (l Loop[T]) reset() {
	if l.Reset != nil {
		l.Reset()
	}
}

func (l Loop[T]) withDefaults() Loop[T] {
	if l.Wait <= 0 {
		l.Wait = DefaultWait
	}
	if l.Slack <= 0 {
		l.Slack = DefaultSlack
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = DefaultRetryAfter
	}
	if l.MinInterval <= 0 {
		l.MinInterval = DefaultMinInterval
	}
	if l.Failed == nil {
		l.Failed = func(error) {}
	}
	return l
}
