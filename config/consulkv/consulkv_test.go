package consulkv_test

import (
	"context"
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
	defaults := config.Shop{ReservationTTL: time.Minute, MaxLineQuantity: 5, LowStockThreshold: 5, GrainCallTimeout: 5 * time.Second, GrainIdleTimeout: 5 * time.Minute}
	live := config.NewLive(defaults)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&consulkv.Watcher{KV: kv, Defaults: defaults, Live: live, WaitTime: time.Second, Logger: shoptest.Logger()}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5s: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("the value present at start is applied", func() bool { return live.LowStockThreshold() == 9 })
	put(config.KeyMaxLineQuantity, "2")
	eventually("a change is applied", func() bool { return live.MaxLineQuantity() == 2 })
	put(config.KeyMaxLineQuantity, "zero")
	put(config.KeyMaintenanceMode, "true") // a later change proves the bad one was read
	eventually("maintenance mode applied", live.MaintenanceMode)
	if got := live.MaxLineQuantity(); got != 2 {
		t.Fatalf("an invalid value replaced the last good one: %d", got)
	}
	if _, err := kv.Delete(consulkv.Prefix+config.KeyMaxLineQuantity, nil); err != nil {
		t.Fatal(err)
	}
	eventually("a deleted key goes back to its default", func() bool { return live.MaxLineQuantity() == 5 })
}
