// Package grainerr is what every grain answers for a failure its domain did not
// name. A failure a retry may cure (a store or a grain that did not answer in time,
// a fenced write lost to another activation) is answered UNAVAILABLE: the edge
// turns it into 503 with Retry-After. Anything else is a bug (a corrupt snapshot, a
// broken invariant, a store error nobody classified) and is answered INTERNAL: the
// edge turns it into 500 and the details stay in the grain's log.
package grainerr

import (
	"errors"
	"log/slog"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/snapshot"
	"phoneshop/fault"
	"phoneshop/grain/call"
	"phoneshop/protos/reasonpb"
)

// Transient reports whether a later retry of the command may succeed where this
// attempt failed with err.
func Transient(err error) bool {
	var answered *cluster.GrainErrorResponse
	switch {
	case fault.Transient(err), errors.Is(err, call.ErrUnreachable), errors.Is(err, call.ErrDeadline):
		return true
	case errors.Is(err, snapshot.ErrStale):
		// Another activation moved the grain on; this one reloaded, and a retry
		// runs against what the winner wrote.
		return true
	case errors.As(err, &answered):
		// Another grain's answer: it already decided.
		return answered.Reason == reasonpb.ErrorReason_UNAVAILABLE.String()
	default:
		return false
	}
}

// Unexpected is the answer to err, a failure the grain's domain did not name:
// UNAVAILABLE when it is transient, else INTERNAL, logged at error level with the
// grain identity log carries. The INTERNAL answer keeps err's text for the edge's
// log; the edge never shows it to a client.
func Unexpected(log *slog.Logger, err error) *cluster.GrainErrorResponse {
	if Transient(err) {
		return reasonpb.ErrUnavailable("%v", err)
	}
	log.Error("grain failed unexpectedly (a bug, not a retryable failure)", "err", err)
	return reasonpb.ErrInternal("%v", err)
}
