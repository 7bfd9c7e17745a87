// Package memprobe measures what cart grains cost in heap while they are active and
// what stays after they passivate, with heap profiles at each point
// (docs/benchmarks/memory.md).
package memprobe

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/config"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/cartpb"
)

// envInt reads a positive integer from the environment, or def.
func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// heap is the heap after two full collections: the bytes of live objects
// (/memory/classes/heap/objects:bytes, which a completed runtime.GC leaves with no
// unswept garbage) and the collector's own live-heap figure (/gc/heap/live:bytes, the
// one cmd/loadgen reports).
type heap struct{ objects, live uint64 }

func readHeap() heap {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return heap{objects: s[0].Value.Uint64(), live: s[1].Value.Uint64()}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// writeHeapProfile writes the heap profile as of the last collection into dir.
func writeHeapProfile(tb testing.TB, dir, name string) {
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// profileDir is where the heap profiles go: MEMPROBE_PROFILES, or tmp/ at the root of
// the module ("off": none).
func profileDir(tb testing.TB) string {
	dir := os.Getenv("MEMPROBE_PROFILES")
	switch dir {
	case "off":
		return ""
	case "":
		dir = filepath.Join("..", "..", "tmp")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BenchmarkCartMemory activates MEMPROBE_CARTS cart grains (100,000 unless told) on a
// one-member dev shop (SQLite, the in-memory membership, as the other tests start
// it), then waits until every one has passivated on its idle timeout. It reports the
// heap each active cart takes and the share of it given back once they all
// passivated, and writes heap profiles at the three points into tmp/
// (memprobe-{baseline,active,after}.pprof). It fails only when a grain was not
// active when measured or never passivated: the figures are reported, not judged.
//
//	go test -run '^$' -bench CartMemory -benchtime 1x ./internal/memprobe/
//	MEMPROBE_CARTS=10000 go test -run '^$' -bench CartMemory -benchtime 1x ./internal/memprobe/
func BenchmarkCartMemory(b *testing.B) {
	carts := envInt(b, "MEMPROBE_CARTS", 100_000)
	// Every cart must still be active when the active heap is read: the idle timeout
	// outlasts the activations (100,000 took 4 to 14 s on 2 shared cores).
	idle := time.Duration(envInt(b, "MEMPROBE_IDLE_SECONDS", 3+carts/4000)) * time.Second
	// More rounds activate as many new carts again once the last ones passivated:
	// what stays after the first round must not grow (it is bounded by the peak).
	rounds := envInt(b, "MEMPROBE_ROUNDS", 1)
	if rate := envInt(b, "MEMPROBE_PROFILE_RATE", 0); rate > 0 {
		runtime.MemProfileRate = rate
	}
	dir := profileDir(b)
	for i := 0; i < b.N; i++ {
		r := measure(b, carts, rounds, idle, dir)
		b.ReportMetric(r.bytesPerCart, "B/cart")
		b.ReportMetric(r.givenBackPct, "%given-back")
		b.ReportMetric(r.keptPerCart, "B-kept/cart")
		b.ReportMetric(mib(r.baseline.objects), "MiB-baseline")
		b.ReportMetric(mib(r.active.objects), "MiB-active")
		b.ReportMetric(mib(r.after.objects), "MiB-after")
		b.Logf("%d carts (round %d of %d), idle %s: heap objects %.1f -> %.1f MiB active -> %.1f MiB after (%.0f B/cart active, %.0f B/cart kept, %.1f%% given back); gc live %.1f -> %.1f -> %.1f MiB; activated in %s, passivated in %s",
			carts, rounds, rounds, idle, mib(r.baseline.objects), mib(r.active.objects), mib(r.after.objects),
			r.bytesPerCart, r.keptPerCart, r.givenBackPct,
			mib(r.baseline.live), mib(r.active.live), mib(r.after.live), r.activate, r.passivate)
	}
}

type result struct {
	baseline, active, after heap
	bytesPerCart            float64 // (active - baseline) / carts
	keptPerCart             float64 // (after - baseline) / carts
	givenBackPct            float64 // (active - after) / (active - baseline)
	activate, passivate     time.Duration
}

// measure starts a shop, activates carts new carts and waits until they passivated,
// rounds times, and returns the figures of the last round against the baseline
// taken before the first.
func measure(b *testing.B, carts, rounds int, idle time.Duration, dir string) result {
	b.StopTimer()
	h := shoptest.Start(b, 1, func(c *config.Dev) {
		c.Settings.ReservationTTL = time.Second
		c.Settings.GrainIdleTimeout = idle
	})
	defer h.Stop()
	member := h.Shop.Members[0]
	c := member.Cluster()
	count := func() int { return member.ActivationCounts()["cart"] }
	// Warm up: one cart activates and passivates, so what a first activation
	// allocates once (pools, the kind's first child, SQLite's statements) is in the
	// baseline, not in the carts' share.
	activate(b, c, "acc_memprobe_warm_", 64)
	waitPassivated(b, count, idle)

	var r result
	r.baseline = readHeap()
	writeHeapProfile(b, dir, "memprobe-baseline.pprof")

	for round := 1; round <= rounds; round++ {
		last := round == rounds
		b.StartTimer()
		start := time.Now()
		activate(b, c, fmt.Sprintf("acc_memprobe_%d_", round), carts)
		r.activate = time.Since(start)
		b.StopTimer()
		if n := count(); n != carts {
			b.Fatalf("round %d: %d carts active when measured, want %d: raise MEMPROBE_IDLE_SECONDS above the %s activation took", round, n, carts, r.activate)
		}
		r.active = readHeap()
		if last {
			writeHeapProfile(b, dir, "memprobe-active.pprof")
		}
		if n := count(); n != carts {
			b.Fatalf("round %d: %d carts active after the heap was read, want %d: raise MEMPROBE_IDLE_SECONDS", round, n, carts)
		}
		start = time.Now()
		waitPassivated(b, count, idle)
		r.passivate = time.Since(start)
		r.after = readHeap()
		if last {
			writeHeapProfile(b, dir, "memprobe-after.pprof")
		} else {
			b.Logf("round %d: heap objects %.1f MiB active -> %.1f MiB after", round, mib(r.active.objects), mib(r.after.objects))
		}
	}

	grown := float64(r.active.objects) - float64(r.baseline.objects)
	r.bytesPerCart = grown / float64(carts)
	r.keptPerCart = (float64(r.after.objects) - float64(r.baseline.objects)) / float64(carts)
	r.givenBackPct = 100 * (float64(r.active.objects) - float64(r.after.objects)) / max(grown, 1)
	return r
}

// activate makes n cart grains active, named prefix0..prefix(n-1), from 64 callers.
func activate(b *testing.B, c *cluster.Cluster, prefix string, n int) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				client := cartpb.GetCartGrainClient(c, fmt.Sprintf("%s%d", prefix, i))
				if _, err := client.Get(&cartpb.GetCartRequest{}, cluster.WithTimeout(30*time.Second)); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d cart activations failed", f, n)
	}
}

// waitPassivated waits until no cart is active: every grain passivates on its own
// idle timeout, so after idle plus a margin none may be left.
func waitPassivated(b *testing.B, count func() int, idle time.Duration) {
	deadline := time.Now().Add(idle + 60*time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d carts still active %s after the idle timeout of %s", count(), 60*time.Second, idle)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
