package promo_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"phoneshop/actors/promo"
	"phoneshop/cluster/member"
	"phoneshop/internal/shoptest"
	"phoneshop/protos/promopb"
	"phoneshop/protos/reasonpb"
)

// clock is a settable time source for the grains.
type clock struct{ at atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.at.Store(t.UnixNano()); return c }

func (c *clock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *clock) advance(d time.Duration) { c.at.Add(int64(d)) }

// startPromoMemberAt is startPromoMember with the grains' clock set by now.
func startPromoMemberAt(t *testing.T, store *memStore, now func() time.Time) *promoMember {
	t.Helper()
	log := shoptest.Logger()
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: log},
		member.Deps{Promo: promo.Deps{Store: store, Now: now, StoreTimeout: 5 * time.Second, GroupCommit: true, Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &promoMember{m: m, c: m.Cluster(), store: store}
}

// limited creates and launches a campaign active from now for a week, with no
// cap and a limit of perCustomer units per account.
func limited(t *testing.T, cl *promopb.PromoGrainClient, now time.Time, perCustomer int64) {
	t.Helper()
	spec := campaignSpec(now.Add(-time.Minute), now.Add(7*24*time.Hour), 0)
	spec.MaxUnitsPerCustomer = perCustomer
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: spec}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	if v, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil || v.Status != "active" {
		t.Fatalf("launch = %v, %v; want active", v, err)
	}
}

// wantLimitExceeded checks that err is the grain's LIMIT_EXCEEDED for promo id
// with remaining units left to the account.
func wantLimitExceeded(t *testing.T, err error, id string, remaining int64) {
	t.Helper()
	var answered *cluster.GrainErrorResponse
	if !reasonpb.IsLimitExceeded(err) || !errors.As(err, &answered) {
		t.Fatalf("err = %v; want LIMIT_EXCEEDED", err)
	}
	if got := answered.Metadata; got["promo_id"] != id || got["remaining"] != fmt.Sprint(remaining) {
		t.Fatalf("metadata = %v; want promo_id %s, remaining %d", got, id, remaining)
	}
}

// TestGrainLimitPerCustomer: the grain counts each account's units across its
// orders, refuses a grant over the limit with the units left (writing nothing),
// gives a returned order's units back to its account, and after a reactivation
// reads an account's units from the store when its next order comes.
func TestGrainLimitPerCustomer(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, true)
	cl := pm.client("promo-1")
	limited(t, cl, time.Now(), 3)
	grant := func(order, account string, units int64) error {
		_, err := cl.Grant(&promopb.GrantRequest{OrderId: order, AccountId: account, Units: units,
			OrderCreatedUnixMs: time.Now().UnixMilli()}, callOpt())
		return err
	}
	if err := grant("o1", "ann", 2); err != nil {
		t.Fatal(err)
	}
	writes := len(store.writes())
	wantLimitExceeded(t, grant("o2", "ann", 2), "promo-1", 1)
	if len(store.writes()) != writes {
		t.Fatal("a refused grant was written")
	}
	if err := grant("o2", "ann", 1); err != nil {
		t.Fatal(err)
	}
	if err := grant("o3", "bob", 3); err != nil {
		t.Fatalf("another account's allowance: %v", err)
	}
	if err := grant("o1", "ann", 2); err != nil {
		t.Fatalf("a retried grant at the limit: %v", err)
	}
	if p, _ := store.stored("promo-1"); p.customers["ann"] != 3 || p.customers["bob"] != 3 {
		t.Fatalf("stored units = %v; want ann 3, bob 3", p.customers)
	}
	if _, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt()); err != nil {
		t.Fatal(err)
	}
	if p, _ := store.stored("promo-1"); p.customers["ann"] != 1 {
		t.Fatalf("stored units of ann after returning o1 = %d; want 1", p.customers["ann"])
	}
	pm.stopGrain(t, "promo-1")
	_, lookupsBefore := store.counts()
	wantLimitExceeded(t, grant("o4", "ann", 3), "promo-1", 2)
	if err := grant("o4", "ann", 2); err != nil {
		t.Fatal(err)
	}
	wantLimitExceeded(t, grant("o5", "bob", 1), "promo-1", 0)
	if _, lookups := store.counts(); lookups-lookupsBefore != 2 {
		t.Fatalf("%d lookups after the reactivation; want one per account (ann, bob), each read once", lookups-lookupsBefore)
	}
	if v := get(t, cl); v.DiscountedUnits != 6 || v.Orders != 3 || v.Spec.MaxUnitsPerCustomer != 3 {
		t.Fatalf("view = %v; want 6 units in 3 orders, limit 3", v)
	}
}

// TestConcurrentGrantsOfOneAccountNeverExceedTheLimit: orders of one account
// racing for a campaign's discount get exactly the limit, and every other is
// refused with no units left, with group commit and without.
func TestConcurrentGrantsOfOneAccountNeverExceedTheLimit(t *testing.T) {
	for _, groupCommit := range []bool{true, false} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			store := newMemStore(t)
			store.saveDelay = 2 * time.Millisecond // writes in flight while grants pile up
			pm := startPromoMember(t, store, groupCommit)
			cl := pm.client("promo-hot")
			limited(t, cl, time.Now(), 5)
			const orders = 40
			var wg sync.WaitGroup
			var granted atomic.Int64
			errs := make(chan error, orders)
			for i := range orders {
				wg.Go(func() {
					_, err := cl.Grant(&promopb.GrantRequest{OrderId: fmt.Sprintf("o%02d", i), AccountId: "ann", Units: 1,
						OrderCreatedUnixMs: time.Now().UnixMilli()}, callOpt())
					if err == nil {
						granted.Add(1)
						return
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				wantLimitExceeded(t, err, "promo-hot", 0)
			}
			if granted.Load() != 5 {
				t.Fatalf("%d orders of one account granted; want exactly the limit, 5", granted.Load())
			}
			if p, _ := store.stored("promo-hot"); p.customers["ann"] != 5 || len(p.grants) != 5 {
				t.Fatalf("stored: ann %d units, %d grants; want 5 and 5", p.customers["ann"], len(p.grants))
			}
		})
	}
}

// TestActivationLoadsTheRecentGrantsOnly: an activation loads the grants of the
// last LedgerWindow and no account's units, however many orders and customers
// the campaign had before (counted in rows, not timed). An older order is looked
// up when a command names it: its retried grant counts once, its cancel gives
// its units back to the cap and to its account once.
func TestActivationLoadsTheRecentGrantsOnly(t *testing.T) {
	store := newMemStore(t)
	clk := newClock(time.Now())
	pm := startPromoMemberAt(t, store, clk.now)
	cl := pm.client("promo-long")
	limited(t, cl, clk.now(), 2)
	grant := func(order, account string, units int64, created time.Time) error {
		_, err := cl.Grant(&promopb.GrantRequest{OrderId: order, AccountId: account, Units: units,
			OrderCreatedUnixMs: created.UnixMilli()}, callOpt())
		return err
	}
	reactivate := func() int {
		t.Helper()
		pm.stopGrain(t, "promo-long")
		before, _ := store.counts()
		get(t, cl)
		after, _ := store.counts()
		return after - before
	}
	firstDay := clk.now()
	for day := range 3 {
		for i := range 30 {
			if err := grant(fmt.Sprintf("d%d-o%d", day, i), fmt.Sprintf("acc-%d-%d", day, i), 2, clk.now()); err != nil {
				t.Fatal(err)
			}
		}
		clk.advance(24 * time.Hour)
		if n := reactivate(); n != 0 {
			t.Fatalf("the activation after day %d loaded %d grants of the %d made before the window; want none", day, n, 30*(day+1))
		}
	}
	if err := grant("now-o1", "acc-now", 1, clk.now()); err != nil {
		t.Fatal(err)
	}
	if n := reactivate(); n != 1 {
		t.Fatalf("the activation loaded %d grants; want the 1 of the window", n)
	}
	if v := get(t, cl); v.DiscountedUnits != 181 || v.Orders != 91 {
		t.Fatalf("view = %d units in %d orders; want 181 in 91 (the counters are kept, not summed)", v.DiscountedUnits, v.Orders)
	}
	// A customer of the first day is still at the limit.
	wantLimitExceeded(t, grant("late-o1", "acc-0-0", 1, clk.now()), "promo-long", 0)
	// A saga's retry of an old order counts once; its cancel, twice, gives back once.
	if err := grant("d0-o1", "acc-0-1", 2, firstDay); err != nil {
		t.Fatalf("retried grant of an old order: %v", err)
	}
	for range 2 {
		if _, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "d0-o1", OrderCreatedUnixMs: firstDay.UnixMilli()}, callOpt()); err != nil {
			t.Fatal(err)
		}
	}
	if v := get(t, cl); v.DiscountedUnits != 179 || v.Orders != 90 {
		t.Fatalf("after cancelling an old order: %d units in %d orders; want 179 in 90", v.DiscountedUnits, v.Orders)
	}
	if err := grant("late-o2", "acc-0-1", 2, clk.now()); err != nil {
		t.Fatalf("the cancelled order's account buys again: %v", err)
	}
	if p, _ := store.stored("promo-long"); p.customers["acc-0-1"] != 2 {
		t.Fatalf("stored units of acc-0-1 = %d; want 2", p.customers["acc-0-1"])
	}
	// A return of an order of unknown age is looked up too.
	if _, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "d1-o5"}, callOpt()); err != nil {
		t.Fatal(err)
	}
	if v := get(t, cl); v.DiscountedUnits != 179 || v.Orders != 90 {
		t.Fatalf("after returning d1-o5: %d units in %d orders; want 179 in 90", v.DiscountedUnits, v.Orders)
	}
}
