package outbox

import (
	"testing"
	"time"
)

func TestNewNamesTheFactNotTheWrite(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	a, err := New(OrderConfirmed, "ord_1", map[string]int{"total_cents": 100}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(OrderConfirmed, "ord_1", map[string]int{"total_cents": 999}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || len(a.ID) != len("evt_")+24 {
		t.Errorf("the same fact has ids %q and %q", a.ID, b.ID)
	}
	for _, other := range []string{ID(OrderShipped, "ord_1"), ID(OrderConfirmed, "ord_2"), ID(PromoActivated, "ord_1")} {
		if other == a.ID {
			t.Errorf("another fact shares the id %s", a.ID)
		}
	}
	if string(a.Payload) != `{"total_cents":100}` || a.RoutingKey != OrderConfirmed || !a.CreatedAt.Equal(now) {
		t.Errorf("event = %+v", a)
	}
	if _, err := New(OrderShipped, "ord_1", func() {}, now); err == nil {
		t.Error("a payload JSON cannot encode was accepted")
	}
}
