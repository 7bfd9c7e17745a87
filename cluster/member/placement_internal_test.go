package member

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// TestKeyOf: the activator finds a stopped grain's key in its PID's id, whatever
// the identity holds.
func TestKeyOf(t *testing.T) {
	system := actor.NewActorSystem()
	for _, key := range []string{"Cart/acc_1", "Order/ord_$x/y", "Inventory/sku-1$", "Cart/"} {
		id := activatorName + "/" + key + system.ProcessRegistry.NextId()
		if got := keyOf(actor.NewPID("host:1", id)); got != key {
			t.Errorf("keyOf(%q) = %q, want %q", id, got, key)
		}
	}
	for _, id := range []string{"other/Cart/acc_1$1", "partition-activator", activatorName + "/no-sequence"} {
		if got := keyOf(actor.NewPID("host:1", id)); got != "" {
			t.Errorf("keyOf(%q) = %q, want none", id, got)
		}
	}
}
