package memberinfo_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"phoneshop/cluster/memberinfo"
	"phoneshop/internal/shoptest"
	"phoneshop/internal/testbin"
	"phoneshop/protos/opspb"
)

// newSystem makes an actor system without remote: its own address is local.
func newSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	logger := shoptest.Logger()
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
	))
	t.Cleanup(system.Shutdown)
	return system
}

// startSystem starts an actor system with a remote on a free loopback port. Under
// the race detector a test package may start one remote only: remote.Start swaps
// gRPC's process-wide logger while an earlier remote's connections use it.
func startSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	logger := shoptest.Logger()
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
	))
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0))
	r.Start()
	t.Cleanup(func() {
		r.Shutdown(false)
		system.Shutdown()
	})
	return system
}

// fixedInfo is an answer whose every field is set, so a field lost on the wire shows.
func fixedInfo(system *actor.ActorSystem) func() *opspb.MemberInfo {
	return func() *opspb.MemberInfo {
		return &opspb.MemberInfo{
			Id: system.ID, Address: system.Address(), Kinds: []string{"cart", "inventory", "order"},
			Activations: map[string]int64{"cart": 3, "inventory": 40, "order": 0},
			Goroutines:  12, HeapBytes: 4096,
		}
	}
}

// query asks address for its info, which it must give: the deadline is generous for
// a loaded machine (the first call over the wire dials gRPC).
func query(t *testing.T, from *actor.ActorSystem, address string) *opspb.MemberInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := memberinfo.Query(ctx, from, address)
	if err != nil {
		t.Fatalf("query %s: %v", address, err)
	}
	return info
}

// TestQueryOwnAddress: a member asking itself (the dev edge shares the first
// member's actor system) gets the answer without the wire.
func TestQueryOwnAddress(t *testing.T) {
	system := newSystem(t)
	if err := memberinfo.Spawn(system, fixedInfo(system)); err != nil {
		t.Fatal(err)
	}
	got := query(t, system, system.Address())
	if diff := cmp.Diff(fixedInfo(system)(), got, protocmp.Transform()); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

// TestSpawnTwiceFails: the name is well known, so a second actor cannot take it.
func TestSpawnTwiceFails(t *testing.T) {
	system := newSystem(t)
	if err := memberinfo.Spawn(system, fixedInfo(system)); err != nil {
		t.Fatal(err)
	}
	if err := memberinfo.Spawn(system, fixedInfo(system)); err == nil {
		t.Fatal("second Spawn on one system succeeded")
	}
}

// TestQueryFailsWhereNothingListens: no member at the address means an error by
// the context's deadline, not a hang. (The one test that starts a remote under the
// race detector.)
func TestQueryFailsWhereNothingListens(t *testing.T) {
	system := startSystem(t)
	// A port of the test's own: nothing listens there, and no outgoing
	// connection (the query's own included) is given it as its local port.
	address := testbin.Addr(t)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := queryWithin(t, ctx, system, address)
	if err == nil {
		t.Fatalf("query of %s where nothing listens answered", address)
	}
	// It ends because its deadline passed (the context's, or the future's, which
	// Query sets to it), or because protoactor gave the message up as a dead letter.
	if !errors.Is(err, memberinfo.ErrNoAnswer) ||
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, actor.ErrTimeout) && !errors.Is(err, actor.ErrDeadLetter) {
		t.Errorf("err = %v, want ErrNoAnswer by the deadline (or a dead letter)", err)
	}
}

// queryWithin runs memberinfo.Query and returns its error, failing the test if the
// query has not ended 30 s after its context did: the bound is generous for a loaded
// machine, the failure it catches is a query that ignores its context.
func queryWithin(t *testing.T, ctx context.Context, system *actor.ActorSystem, address string) error {
	t.Helper()
	ended := make(chan error, 1)
	go func() {
		_, err := memberinfo.Query(ctx, system, address)
		ended <- err
	}()
	select {
	case err := <-ended:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-ended:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the query of %s did not end within 30s of its context (%v)", address, ctx.Err())
		return nil
	}
}

// TestQueryWithoutActorFails: a system that runs no memberinfo actor answers with
// a dead letter, which is an error too.
func TestQueryWithoutActorFails(t *testing.T) {
	system := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := queryWithin(t, ctx, system, system.Address()); !errors.Is(err, memberinfo.ErrNoAnswer) {
		t.Fatalf("query of a system without the actor: err = %v, want ErrNoAnswer", err)
	}
}

// TestQueryHonoursCancel: a cancelled context ends the query at once.
func TestQueryHonoursCancel(t *testing.T) {
	system := newSystem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := memberinfo.Query(ctx, system, "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestClusterQueryOverRemote: a round trip between two actor systems over gRPC.
// Two remotes in one process race inside protoactor-go (see shoptest.MultiMember).
func TestClusterQueryOverRemote(t *testing.T) {
	shoptest.MultiMember(t)
	member, edge := startSystem(t), startSystem(t)
	if member.Address() == edge.Address() {
		t.Fatalf("both systems on %s", member.Address())
	}
	if err := memberinfo.Spawn(member, fixedInfo(member)); err != nil {
		t.Fatal(err)
	}
	got := query(t, edge, member.Address())
	if diff := cmp.Diff(fixedInfo(member)(), got, protocmp.Transform()); diff != "" {
		t.Errorf("answer over the wire (-want +got):\n%s", diff)
	}
	if got.Id != member.ID {
		t.Errorf("id = %q, want the member's %q", got.Id, member.ID)
	}
}
