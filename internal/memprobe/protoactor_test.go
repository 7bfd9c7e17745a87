package memprobe

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

// This file reproduces, with protoactor-go alone, what keeps passivated grains in
// the heap (docs/benchmarks/memory.md): a parent that spawned actors keeps about
// half of those that stopped reachable, each with its whole context, mailbox and
// actor (disthash's placement actor is every grain's parent), and the process
// registry keeps the map memory of the most actors it held at once.

// quietSystem is an actor system that logs warnings and errors only.
func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})))
}

// idleChild behaves as a generated grain does: it passivates (poisons itself) when
// it received nothing for a while. With forget, it sends to its own, dead, PID on
// Stopped, which makes the PID drop the Process it cached.
type idleChild struct {
	idle   time.Duration
	forget bool
	_      [512]byte // stands for the grain's own state
}

func (c *idleChild) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		ctx.SetReceiveTimeout(c.idle)
	case *actor.ReceiveTimeout:
		ctx.Poison(ctx.Self())
	case *actor.Stopped:
		if c.forget {
			// The process is out of the registry already: this send finds it dead,
			// drops the Process the PID cached, and goes to the dead letters
			// (unlogged).
			ctx.Send(ctx.Self(), forgetProcess{})
		}
	}
}

type forgetProcess struct{}

func (forgetProcess) IgnoreDeadLetterLogging() {}

// placement stands for disthash's placement actor: it spawns the children as its
// own and counts them out as they terminate.
type placement struct {
	stopped *sync.WaitGroup
}

type spawnChildren struct {
	n     int
	props *actor.Props
}

func (p *placement) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case spawnChildren:
		for range m.n {
			ctx.SpawnPrefix(m.props, "child")
		}
		ctx.Respond(true)
	case *actor.Terminated:
		p.stopped.Done()
	}
}

// stoppedChildrenReachable spawns n children under one parent, lets them all
// passivate, and counts how many of the stopped actors the heap still reaches.
func stoppedChildrenReachable(t *testing.T, n int, forget bool) (reachable int, keptBytes int64) {
	system := quietSystem()
	defer system.Shutdown()
	var stopped sync.WaitGroup
	stopped.Add(n)
	parent := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &placement{stopped: &stopped} }))

	var mu sync.Mutex
	children := make([]weak.Pointer[idleChild], 0, n)
	props := actor.PropsFromProducer(func() actor.Actor {
		c := &idleChild{idle: 200 * time.Millisecond, forget: forget}
		mu.Lock()
		children = append(children, weak.Make(c))
		mu.Unlock()
		return c
	})
	before := readHeap()
	if _, err := system.Root.RequestFuture(parent, spawnChildren{n: n, props: props}, 30*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { stopped.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("children did not all passivate")
	}
	after := readHeap()
	mu.Lock()
	defer mu.Unlock()
	if len(children) != n {
		t.Fatalf("%d children made, want %d", len(children), n)
	}
	for _, w := range children {
		if w.Value() != nil {
			reachable++
		}
	}
	runtime.KeepAlive(parent)
	return reachable, int64(after.objects) - int64(before.objects)
}

// TestProtoactorParentKeepsStoppedChildrenReachable: once all of a parent's children
// stopped, about half of them are still reachable, because
//
//   - PIDSet.Remove (actor/pidset.go:65-73) moves the last PID into the freed slot
//     and shortens the slice without clearing the slot it vacated, so the parent's
//     children slice keeps a *PID in every slot up to its peak length;
//   - a PID caches its Process (actor/pid.go:39) and only drops it when it is next
//     resolved after death (pid.go:30-31); the receive timeout's send to self
//     (actor_context.go:253) and Poison(Self()) cached it, and nothing resolves it
//     after finalizeStop (actor_context.go:682-703);
//   - the Process is the ActorProcess, whose mailbox holds the actorContext, which
//     holds the actor, its props, its receive-timeout timer and its last message.
//
// Children stopping in the order they started leave n/2 distinct PIDs in the n slots.
// Sending to its own PID once stopped (the process is out of the registry by then,
// actor_context.go:683) makes the PID drop its cache: none stays reachable. The shop
// avoids the children set altogether (cluster/member/placement.go). The test fails when
// protoactor-go stops doing this (placement.go's reasons are then out of date), and
// when the way around it stops working.
func TestProtoactorParentKeepsStoppedChildrenReachable(t *testing.T) {
	const n = 2000
	upstream, upstreamBytes := stoppedChildrenReachable(t, n, false)
	forgotten, forgottenBytes := stoppedChildrenReachable(t, n, true)
	t.Logf("of %d stopped children: %d reachable (%d B/child kept) as protoactor leaves them; %d reachable (%d B/child kept) when each sends to its dead self on Stopped",
		n, upstream, upstreamBytes/n, forgotten, forgottenBytes/n)
	if upstream == 0 {
		t.Errorf("protoactor-go no longer keeps stopped children reachable: see whether cluster/member/placement.go is still needed")
	}
	if forgotten != 0 {
		t.Errorf("%d of %d stopped children still reachable after they sent to their dead selves", forgotten, n)
	}
}

// BenchmarkProtoactorRegistryKeepsMapMemory: the process registry is 1,024
// concurrent maps of 32 shards each, 32,768 Go maps (actor/process_registry.go:23-31,
// orcaman/concurrent-map New), and a Go map keeps the memory of its peak size when
// its entries are deleted (process_registry.go:97-104 only deletes). Registering n
// actors at once and stopping them all leaves that memory behind; doing it again
// reuses it. Reported per actor of the peak.
//
//	go test -run '^$' -bench RegistryKeeps -benchtime 1x ./internal/memprobe/
func BenchmarkProtoactorRegistryKeepsMapMemory(b *testing.B) {
	n := envInt(b, "MEMPROBE_CARTS", 100_000)
	for i := 0; i < b.N; i++ {
		system := quietSystem()
		before := readHeap()
		kept := make([]int64, 2)
		for round := range kept {
			var stopped sync.WaitGroup
			stopped.Add(n)
			props := actor.PropsFromFunc(func(ctx actor.Context) {
				if _, ok := ctx.Message().(*actor.Stopped); ok {
					stopped.Done()
				}
			})
			pids := make([]*actor.PID, n)
			for j := range pids {
				pids[j] = system.Root.Spawn(props)
			}
			for _, pid := range pids {
				system.Root.Stop(pid)
			}
			clear(pids) // the PIDs cached their processes when stopped
			stopped.Wait()
			after := readHeap()
			kept[round] = int64(after.objects) - int64(before.objects)
		}
		b.ReportMetric(float64(kept[0])/float64(n), "B-kept/actor")
		b.ReportMetric(float64(kept[1])/float64(n), "B-kept/actor-2nd-round")
		b.Logf("%d actors registered then stopped: %.1f MiB kept; after a second round of %d: %.1f MiB",
			n, mib(uint64(max(kept[0], 0))), n, mib(uint64(max(kept[1], 0))))
		system.Shutdown()
	}
}

// probeGrain is the smallest grain: it answers anything and passivates when idle,
// as a generated grain does.
type probeGrain struct {
	idle time.Duration
	_    [512]byte // stands for the grain's own state
}

func (g *probeGrain) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *cluster.ClusterInit:
		ctx.SetReceiveTimeout(g.idle)
	case *actor.ReceiveTimeout:
		ctx.Poison(ctx.Self())
	case *cluster.GrainRequest:
		ctx.Respond(&cluster.GrainResponse{})
	}
}

// BenchmarkProtoactorDisthashPassivation is the whole path with protoactor-go alone:
// one member (test provider, disthash, remote on loopback) activates
// MEMPROBE_CARTS grains of a kind that passivates when idle, and waits until every
// one passivated. It reports what the grains kept after passivation and how long
// passivating took: disthash's placement actor finds the grain of each Terminated
// by scanning its whole map (disthash/placement_actor.go:50,117-124), O(n) per
// passivation and O(n²) for n, during which it answers no activation.
//
//	MEMPROBE_CARTS=20000 go test -run '^$' -bench DisthashPassivation -benchtime 1x ./internal/memprobe/
func BenchmarkProtoactorDisthashPassivation(b *testing.B) {
	n := envInt(b, "MEMPROBE_CARTS", 100_000)
	idle := time.Duration(envInt(b, "MEMPROBE_IDLE_SECONDS", 3+n/4000)) * time.Second
	for i := 0; i < b.N; i++ {
		system := quietSystem()
		var mu sync.Mutex
		grains := make([]weak.Pointer[probeGrain], 0, n)
		kind := cluster.NewKind("probe", actor.PropsFromProducer(func() actor.Actor {
			g := &probeGrain{idle: idle}
			mu.Lock()
			grains = append(grains, weak.Make(g))
			mu.Unlock()
			return g
		}))
		provider := test.NewTestProvider(test.NewInMemAgent())
		c := cluster.New(system, cluster.Configure("memprobe", provider, disthash.New(), remote.Configure("127.0.0.1", 0),
			cluster.WithKinds(kind)))
		c.StartMember()
		probe := c.GetClusterKind("probe")
		call := func(id string) error {
			_, err := c.Request(id, "probe", &cluster.GrainRequest{}, cluster.WithTimeout(30*time.Second))
			return err
		}
		if err := call("warm"); err != nil {
			b.Fatal(err)
		}
		for probe.Count() > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		before := readHeap()

		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for j := next.Add(1) - 1; j < int64(n); j = next.Add(1) - 1 {
					if call(fmt.Sprintf("grain-%d", j)) != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d activations failed", f, n)
		}
		if got := probe.Count(); got != int32(n) {
			b.Fatalf("%d grains active, want %d", got, n)
		}
		active := readHeap()
		start := time.Now()
		deadline := start.Add(idle + 10*time.Minute)
		for probe.Count() > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d grains still active", probe.Count())
			}
			time.Sleep(100 * time.Millisecond)
		}
		passivated := time.Since(start)
		after := readHeap()
		mu.Lock()
		reachable := 0
		for _, w := range grains {
			if w.Value() != nil {
				reachable++
			}
		}
		mu.Unlock()

		grown := float64(active.objects) - float64(before.objects)
		b.ReportMetric(grown/float64(n), "B/grain")
		b.ReportMetric((float64(after.objects)-float64(before.objects))/float64(n), "B-kept/grain")
		b.ReportMetric(100*(float64(active.objects)-float64(after.objects))/max(grown, 1), "%given-back")
		b.ReportMetric(passivated.Seconds()-idle.Seconds(), "s-passivating-after-idle")
		b.ReportMetric(float64(reachable), "grains-reachable")
		b.Logf("%d grains: heap objects %.1f -> %.1f MiB active -> %.1f MiB after; %d of the passivated grains still reachable; all passivated %s after the last activation (idle timeout %s)",
			n, mib(before.objects), mib(active.objects), mib(after.objects), reachable, passivated.Round(time.Millisecond), idle)
		c.Shutdown(false) // shuts the actor system down too
	}
}
