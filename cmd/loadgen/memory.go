package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/config"
	"phoneshop/protos/cartpb"
	"phoneshop/shop"
)

// Memory is what cart grains cost in memory, and whether idle ones give it back.
type Memory struct {
	Carts           int     `json:"carts"`
	Activations     int     `json:"activations"`
	BytesPerCart    float64 `json:"bytes_per_cart"`
	HeapBeforeMiB   float64 `json:"heap_before_mib"`
	HeapActiveMiB   float64 `json:"heap_active_mib"`
	HeapAfterMiB    float64 `json:"heap_after_passivation_mib"`
	LeftActive      int     `json:"left_active_after_idle"`
	IdleTimeout     string  `json:"idle_timeout"`
	ActivateSeconds float64 `json:"activate_seconds"`
}

// measureCartMemory starts a shop in this process (SQLite in a temporary directory,
// a short idle timeout), activates carts cart grains, and measures the live heap
// with them active and after they passivated.
func measureCartMemory(ctx context.Context, carts int, idle time.Duration, log *slog.Logger) (Memory, error) {
	m := Memory{Carts: carts, IdleTimeout: idle.String()}
	dir, err := os.MkdirTemp("", "phoneshop-memory-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	cfg, _, err := config.ParseDev([]string{"--data-dir", dir, "--reservation-ttl", (idle / 2).String(), "--grain-idle-timeout", idle.String()})
	if err != nil {
		return m, err
	}
	s, err := shop.StartDev(ctx, cfg, shop.Options{Members: 1}, log)
	if err != nil {
		return m, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(sctx)
	}()
	member := s.Members[0]
	m.HeapBeforeMiB = liveHeapMiB()

	start := time.Now()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(carts) || ctx.Err() != nil {
					return
				}
				client := cartpb.GetCartGrainClient(member.Cluster(), fmt.Sprintf("acc_memory_%d", i))
				if _, err := client.Get(&cartpb.GetCartRequest{}, cluster.WithTimeout(30*time.Second)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	m.ActivateSeconds = time.Since(start).Seconds()
	if n := failed.Load(); n > 0 {
		return m, fmt.Errorf("memory: %d cart activations failed", n)
	}
	m.Activations = member.ActivationCounts()["cart"]
	m.HeapActiveMiB = liveHeapMiB()
	m.BytesPerCart = (m.HeapActiveMiB - m.HeapBeforeMiB) * (1 << 20) / float64(carts)

	// Idle grains passivate after the idle timeout; wait for it, then a little more.
	deadline := time.Now().Add(idle + 45*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if member.ActivationCounts()["cart"] == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	m.LeftActive = member.ActivationCounts()["cart"]
	m.HeapAfterMiB = liveHeapMiB()
	return m, nil
}

// liveHeapMiB is the heap still reachable after a full collection.
func liveHeapMiB() float64 {
	runtime.GC()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return float64(sample[0].Value.Uint64()) / (1 << 20)
}
