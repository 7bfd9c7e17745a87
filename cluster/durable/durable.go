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
// elsewhere and reports back with a Done message (see Grain.Write).
package durable

import (
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
}

// Reset starts over from a freshly loaded state at version.
func (p *Pipeline) Reset(version int64) {
	*p = Pipeline{version: version}
}

// Version is the durable version: the one the next write is fenced on.
func (p *Pipeline) Version() int64 { return p.version }

// Saving reports whether a write is in flight.
func (p *Pipeline) Saving() bool { return p.saving }

// Pending reports whether answers wait for a write that has not started yet.
func (p *Pipeline) Pending() bool { return len(p.pending) > 0 }

// Answer answers the command being processed at once: its change need not be
// durable before its answer (a hold a crash may drop), and it did not depend on
// one that must be. Whatever it changed is written with the next write.
func (p *Pipeline) Answer(ctx actor.Context, reply any) {
	answer(ctx, waiter{sender: ctx.Sender(), reply: reply})
}

// Submit records the outcome of the command being processed (ctx's current
// message): changed says whether it changed the state, reply is what its sender gets
// (a response or an error) once what it observed is durable. It reports whether the
// grain should start a write now.
func (p *Pipeline) Submit(ctx actor.Context, changed bool, reply any) (startWrite bool) {
	w := waiter{sender: ctx.Sender(), reply: reply}
	if !changed && !p.saving && !p.dirty {
		answer(ctx, w)
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
	return p.version
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
		p.inflight, p.pending, p.dirty = nil, nil, false
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
