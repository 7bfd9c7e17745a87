// Package memberinfo lets the ops dashboard see what each cluster member hosts.
// Every member spawns one well-known local actor, Name, that answers an
// opspb.MemberInfoRequest with the member's id, address, kinds and activations per
// kind. The edge is a cluster client without gossip, so it cannot read activation
// counts from the members' heartbeats: it asks each member's actor directly.
package memberinfo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"phoneshop/protos/opspb"
)

// Name is the name of the memberinfo actor on every member.
const Name = "phoneshop-memberinfo"

// DefaultTimeout bounds a Query whose context has no deadline.
const DefaultTimeout = time.Second

// ErrNoAnswer is returned when the member did not answer before the deadline (it is
// down, unreachable, or runs no memberinfo actor).
var ErrNoAnswer = errors.New("memberinfo: no answer")

// Spawn starts the memberinfo actor on system. info is called for every request,
// on the actor's goroutine, and must be cheap and safe to call concurrently with
// the member's work.
func Spawn(system *actor.ActorSystem, info func() *opspb.MemberInfo) error {
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*opspb.MemberInfoRequest); ok {
			ctx.Respond(info())
		}
	})
	if _, err := system.Root.SpawnNamed(props, Name); err != nil {
		return fmt.Errorf("memberinfo: spawn %s: %w", Name, err)
	}
	return nil
}

// Query asks the member at address (host:port of its remote) to describe itself.
// It waits until ctx's deadline (DefaultTimeout when ctx has none) or until ctx is
// done, whichever comes first.
func Query(ctx context.Context, system *actor.ActorSystem, address string) (*opspb.MemberInfo, error) {
	timeout := DefaultTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w from %s: %w", ErrNoAnswer, address, err)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w from %s: %w", ErrNoAnswer, address, context.DeadlineExceeded)
	}
	future := system.Root.RequestFuture(actor.NewPID(address, Name), &opspb.MemberInfoRequest{}, timeout)
	type result struct {
		msg any
		err error
	}
	done := make(chan result, 1)
	// The future ends by itself at its timeout; waiting in a goroutine only lets a
	// cancelled ctx return earlier.
	go func() {
		msg, err := future.Result()
		done <- result{msg, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w from %s: %w", ErrNoAnswer, address, ctx.Err())
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%w from %s: %w", ErrNoAnswer, address, r.err)
		}
		info, ok := r.msg.(*opspb.MemberInfo)
		if !ok {
			return nil, fmt.Errorf("memberinfo: %s answered %T, want *opspb.MemberInfo", address, r.msg)
		}
		return info, nil
	}
}
