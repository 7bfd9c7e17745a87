// Package grainctx attaches a grain kind's dependencies (store, clock, settings) to
// an actor system, so that a grain activation finds the ones of the member it runs
// on. protoc-gen-go-grain keeps the grain factory in a package-level variable that
// every member of a process shares; protoactor's per-system extensions do not.
package grainctx

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
)

// Slot is a typed place for one value per actor system.
type Slot[T any] struct {
	id extensions.ExtensionID
}

// NewSlot returns a slot with its own extension id. Call it once per kind, in a
// package-level var.
func NewSlot[T any]() Slot[T] {
	return Slot[T]{id: extensions.NextExtensionID()}
}

type holder[T any] struct {
	id    extensions.ExtensionID
	value T
}

func (h *holder[T]) ExtensionID() extensions.ExtensionID { return h.id }

// Put attaches v to system.
func (s Slot[T]) Put(system *actor.ActorSystem, v T) {
	system.Extensions.Register(&holder[T]{id: s.id, value: v})
}

// Get returns the value attached to system; it panics when none was, which is a
// wiring bug found by the first test that activates the kind.
func (s Slot[T]) Get(system *actor.ActorSystem) T {
	h, ok := system.Extensions.Get(s.id).(*holder[T])
	if !ok {
		panic(fmt.Sprintf("grainctx: nothing attached for %T on actor system %s", *new(T), system.ID))
	}
	return h.value
}
