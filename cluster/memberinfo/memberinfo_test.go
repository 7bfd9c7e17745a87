package memberinfo_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"phoneshop/cluster/memberinfo"
	"phoneshop/internal/shoptest"
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

func query(t *testing.T, from *actor.ActorSystem, address string) *opspb.MemberInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := ln.Addr().String()
	ln.Close()

	const timeout = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	info, err := memberinfo.Query(ctx, system, address)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("query of %s where nothing listens answered %v", address, info)
	}
	if !errors.Is(err, memberinfo.ErrNoAnswer) {
		t.Errorf("err = %v, want ErrNoAnswer", err)
	}
	// Generous slack for a loaded machine: the point is that the query ends at its
	// deadline, not at protoactor's 5 s default or never.
	if elapsed > timeout+2*time.Second {
		t.Errorf("query took %v with a %v deadline", elapsed, timeout)
	}
}

// TestQueryWithoutActorFails: a system that runs no memberinfo actor answers with
// a dead letter, which is an error too.
func TestQueryWithoutActorFails(t *testing.T) {
	system := newSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if info, err := memberinfo.Query(ctx, system, system.Address()); err == nil {
		t.Fatalf("query of a system without the actor answered %v", info)
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
// Two remotes in one process race inside protoactor-go (see shoptest.SkipUnderRace).
func TestClusterQueryOverRemote(t *testing.T) {
	shoptest.SkipUnderRace(t)
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
