package consulkv_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/config"
	"phoneshop/config/consulkv"
	"phoneshop/internal/consultest"
	"phoneshop/internal/shoptest"
)

func TestWatcherFollowsConsulKV(t *testing.T) {
	agent := consultest.Start(t)
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	kv := client.KV()
	put := func(key, value string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: consulkv.Prefix + key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A value present before the shop starts is read at start.
	put(config.KeyLowStockThreshold, "9")
	defaults := config.Settings{ReservationTTL: time.Minute, MaxLineQuantity: 5, LowStockThreshold: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute}
	live := config.NewLive(defaults)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&consulkv.Watcher{KV: kv, Defaults: defaults, Live: live, WaitTime: time.Second, Logger: shoptest.Logger()}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	consultest.Eventually(t, "the value present at start is applied", func() bool { return live.LowStockThreshold() == 9 })
	put(config.KeyMaxLineQuantity, "2")
	consultest.Eventually(t, "a change is applied", func() bool { return live.MaxLineQuantity() == 2 })
	put(config.KeyMaxLineQuantity, "zero")
	put(config.KeyMaintenanceMode, "true") // a later change proves the bad one was read
	consultest.Eventually(t, "maintenance mode applied", live.MaintenanceMode)
	if got := live.MaxLineQuantity(); got != 2 {
		t.Fatalf("an invalid value replaced the last good one: %d", got)
	}
	if _, err := kv.Delete(consulkv.Prefix+config.KeyMaxLineQuantity, nil); err != nil {
		t.Fatal(err)
	}
	consultest.Eventually(t, "a deleted key goes back to its default", func() bool { return live.MaxLineQuantity() == 5 })
}

// TestWatcherGivesUpOnAStalledAgent: a frozen agent (SIGSTOP: the connection stays
// open, nothing answers) does not hold the watcher's blocking query for ever: it
// gives up, says so, and follows KV again once the agent is back.
func TestWatcherGivesUpOnAStalledAgent(t *testing.T) {
	agent := consultest.Start(t)
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	kv := client.KV()
	defaults := config.Settings{ReservationTTL: time.Minute, MaxLineQuantity: 5, LowStockThreshold: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute}
	live := config.NewLive(defaults)
	logged := &consultest.LogRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		logger := slog.New(slog.NewTextHandler(io.MultiWriter(logged, os.Stderr), nil))
		(&consulkv.Watcher{KV: kv, Defaults: defaults, Live: live, WaitTime: time.Second, Logger: logger}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	const gaveUp = "config: reading Consul KV failed"
	// The defaults applied: the watcher has read KV and is now in a blocking query.
	consultest.Eventually(t, "the first read", func() bool { return logged.Has("from=default") })
	agent.Pause()
	consultest.Eventually(t, "with the agent stalled, the watcher logs "+gaveUp, func() bool { return logged.Has(gaveUp) })
	agent.Resume()
	if _, err := kv.Put(&api.KVPair{Key: consulkv.Prefix + config.KeyMaxLineQuantity, Value: []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	consultest.Eventually(t, "a change after the agent is back is applied", func() bool { return live.MaxLineQuantity() == 3 })
}
