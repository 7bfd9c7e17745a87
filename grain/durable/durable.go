// Package durable is group commit inside one grain. A grain that writes its snapshot
// after every command, and waits for that write before taking the next command,
// can do one command per commit: a hot SKU in a flash sale then queues behind the
// disk. With a Pipeline the grain goes on applying commands to its in-memory state
// while one write is in flight; the next write carries every change made meanwhile,
// and each command is answered only once a write that covers it has committed.
//
// What a command observed is what it is answered with, so its answer waits even
// when the command changed nothing (a repeated reservation, a read, an out-of-stock
// refusal): it saw state that is not durable yet. If a write fails, every answer
// that depended on it becomes an error, and the grain must drop its in-memory state
// and reload what is durable.
//
// A Pipeline is used from the grain's actor goroutine only; the write itself runs
// elsewhere and reports back with a Done message (see Pipeline.Write).
//
// Every grain that writes this way (inventory items, campaigns) goes through the
// same steps: Serve and Submit (or Answer) for each command, Begin and Write for
// each write, Finish when it is done. The grain supplies only what its write
// carries and what a failed write means to it.
package durable

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// Done is the message that tells the grain its write finished.
type Done struct{ Err error }

type waiter struct {
	sender *actor.PID
	reply  any // a response message or an error
}

// Pipeline tracks one grain's writes and the answers waiting for them.
type Pipeline struct {
	version  int64 // the version that is durable
	saving   bool
	dirty    bool // in-memory state has changes no write has taken yet
	inflight []waiter
	pending  []waiter
	// by is the latest deadline of the commands the next write serves: it may
	// take until then, since someone still waits for it. writeBy is the one of
	// the write Begin started.
	by, writeBy time.Time
}

// Reset starts over from a freshly loaded state at version.
func (p *Pipeline) Reset(version int64) {
	*p = Pipeline{version: version}
}

// Version is the durable version: the one the next write is fenced on.
func (p *Pipeline) Version() int64 { return p.version }

// Serve records the deadline of the command about to be submitted: the write
// that covers it may take until the latest deadline of the commands it serves.
func (p *Pipeline) Serve(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok && dl.After(p.by) {
		p.by = dl
	}
}

// Answer answers the command being processed at once: its change need not be
// durable before its answer (a hold a crash may drop), and it did not depend on
// one that must be. Whatever it changed is written with the next write.
func (p *Pipeline) Answer(ctx actor.Context, reply any) {
	answer(ctx, waiter{sender: ctx.Sender(), reply: reply})
	p.forgetAnswered()
}

// forgetAnswered drops the deadlines of answered commands: they must not bound a
// later write they do not wait for, such as the one the grain's own timer starts.
func (p *Pipeline) forgetAnswered() {
	if len(p.pending) == 0 {
		p.by = time.Time{}
	}
}

// Submit records the outcome of the command being processed (ctx's current
// message): changed says whether it changed the state, reply is what its sender gets
// (a response or an error) once what it observed is durable. It reports whether the
// grain should start a write now.
func (p *Pipeline) Submit(ctx actor.Context, changed bool, reply any) (startWrite bool) {
	w := waiter{sender: ctx.Sender(), reply: reply}
	if !changed && !p.saving && !p.dirty {
		answer(ctx, w)
		p.forgetAnswered()
		return false
	}
	p.pending = append(p.pending, w)
	if changed {
		p.dirty = true
	}
	return !p.saving && p.dirty
}

// Begin marks a write as started; the grain snapshots its state now and writes it
// fenced on the returned version.
func (p *Pipeline) Begin() (expectedVersion int64) {
	p.inflight, p.pending = p.pending, nil
	p.dirty, p.saving = false, true
	p.writeBy, p.by = p.by, time.Time{}
	return p.version
}

// Write runs the write Begin started. save gets a context bounded by timeout and
// by the latest deadline of the commands the write serves (a write nobody waits
// for, an expiry, has timeout alone). In the background (group commit) save runs
// on a goroutine of its own and its outcome comes back to self as a Done message,
// while the grain goes on taking commands; inline, it runs now and Write returns
// its outcome (done true), for the grain to Finish at once.
func (p *Pipeline) Write(root *actor.RootContext, self *actor.PID, background bool, timeout time.Duration,
	save func(context.Context) error) (done bool, err error) {
	by := p.writeBy
	run := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if !by.IsZero() {
			var cancelBy context.CancelFunc
			ctx, cancelBy = context.WithDeadline(ctx, by)
			defer cancelBy()
		}
		return save(ctx)
	}
	if !background {
		return true, run()
	}
	go func() { root.Send(self, &Done{Err: run()}) }()
	return false, nil
}

// Finish handles the end of the write: on success it answers every command the
// write covered and reports whether another write should start; on failure it
// answers every waiting command with failure(err), called once (the grain's
// classification: UNAVAILABLE for a timeout or a fenced write, INTERNAL for a bug),
// and reports failed, after which the grain must reload its state.
func (p *Pipeline) Finish(ctx actor.Context, err error, failure func(error) error) (startWrite, failed bool) {
	p.saving = false
	if err != nil {
		ferr := failure(err)
		for _, w := range append(p.inflight, p.pending...) {
			answer(ctx, waiter{sender: w.sender, reply: ferr})
		}
		p.inflight, p.pending, p.dirty, p.by = nil, nil, false, time.Time{}
		return false, true
	}
	p.version++
	for _, w := range p.inflight {
		answer(ctx, w)
	}
	p.inflight = nil
	if p.dirty {
		return true, false
	}
	// Nothing changed since the write began: what the pending commands saw is durable.
	for _, w := range p.pending {
		answer(ctx, w)
	}
	p.pending = nil
	p.forgetAnswered()
	return false, false
}

func answer(ctx actor.Context, w waiter) {
	if w.sender == nil {
		return // the grain's own timer: nobody to answer
	}
	if err, ok := w.reply.(error); ok {
		ctx.Send(w.sender, cluster.FromError(err))
		return
	}
	ctx.Send(w.sender, w.reply)
}
