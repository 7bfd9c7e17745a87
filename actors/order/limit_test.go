package order

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// limitedCampaigns are the campaigns of the discounted order, spring limited to
// perCustomer units per account; heldBefore units of spring are held by another
// order of the same account.
func limitedCampaigns(perCustomer, heldBefore int64) func() *fakePromos {
	return func() *fakePromos {
		p := newPromos(map[string]fakeCampaign{
			"clearance": {Left: 10, Active: true},
			"spring":    {Left: -1, Active: true, PerCustomer: perCustomer},
		})
		if heldBefore > 0 {
			if err := p.Grant(context.Background(), "spring", "ord_earlier", acct, heldBefore); err != nil {
				panic(err)
			}
		}
		p.calls = nil
		return p
	}
}

// TestAdvanceOverTheLimitPerCustomer: a campaign's limit per customer refuses an
// order at the grant step, after "committing" is durable and before any unit is
// sold: the order is rejected with the campaign and the units left to the
// account, the grants it took of other campaigns go back, every reservation is
// released, and the rejection is saved before the answer.
func TestAdvanceOverTheLimitPerCustomer(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	nothingSold := stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}}
	allSold := stockState{
		Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
		Sold:      map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
	}
	refusedCalls := []string{"Grant clearance 3", "Grant spring 4", "Return clearance", "Return spring"}
	tests := []struct {
		name          string
		promos        func() *fakePromos
		wantOverLimit *LimitExceededError // nil: confirmed
		wantStock     stockState
		wantCalls     []string
		// wantSpring is the units the account holds at spring afterwards.
		wantSpring int64
	}{
		{
			name: "an_order_over_the_limit_is_rejected_with_what_is_left", promos: limitedCampaigns(3, 0),
			wantOverLimit: &LimitExceededError{PromoID: "spring", Remaining: 3},
			wantStock:     nothingSold, wantCalls: refusedCalls, wantSpring: 0,
		},
		{
			name: "units_of_an_earlier_order_of_the_account_count", promos: limitedCampaigns(5, 2),
			wantOverLimit: &LimitExceededError{PromoID: "spring", Remaining: 3},
			wantStock:     nothingSold, wantCalls: refusedCalls, wantSpring: 2,
		},
		{
			name: "an_order_up_to_the_limit_confirms", promos: limitedCampaigns(6, 2),
			wantStock: allSold, wantCalls: wantGrants, wantSpring: 6,
		},
		{
			// The limit refuses whatever the other campaigns answer: a shopper
			// must take units out of the cart, a repricing cannot help.
			name: "over_the_limit_and_a_price_change_answer_the_limit",
			promos: func() *fakePromos {
				p := limitedCampaigns(1, 0)()
				p.campaigns["clearance"] = fakeCampaign{Left: 10, Active: false}
				return p
			},
			wantOverLimit: &LimitExceededError{PromoID: "spring", Remaining: 1},
			wantStock:     nothingSold, wantCalls: refusedCalls, wantSpring: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := placed(t, discounted...)
			stock, promos, saver := stockFor4(), tc.promos(), newSaver()
			err := o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, (&clock{}).now)
			if tc.wantOverLimit == nil {
				assertErr(t, err, nil)
				assertSaved(t, saver, []Status{StatusCommitting, StatusConfirmed})
			} else {
				var got *LimitExceededError
				if !errors.As(err, &got) || !errors.Is(err, ErrLimitExceeded) {
					t.Fatalf("err = %v; want a *LimitExceededError", err)
				}
				if diff := cmp.Diff(tc.wantOverLimit, got); diff != "" {
					t.Fatalf("LimitExceededError (-want +got):\n%s", diff)
				}
				if o.Status != StatusRejected || !cmp.Equal(o.OverLimit, tc.wantOverLimit) || len(o.RejectedPromos) != 0 {
					t.Fatalf("order %s, over limit %+v, rejected promos %v", o.Status, o.OverLimit, o.RejectedPromos)
				}
				assertSaved(t, saver, []Status{StatusCommitting, StatusRejected})
			}
			assertStock(t, stock, tc.wantStock)
			assertPromoCalls(t, promos, tc.wantCalls)
			if got := promos.customers[key("spring", acct)]; got != tc.wantSpring {
				t.Fatalf("the account holds %d units of spring, want %d", got, tc.wantSpring)
			}
			if got := promos.granted[key("clearance", id)]; (got > 0) != (tc.wantOverLimit == nil) {
				t.Fatalf("clearance grant of the order = %d units with over limit %v", got, tc.wantOverLimit)
			}
		})
	}
}

// TestOverLimitRefusalWhoseSaveFailedIsRefusedAgain: a crash (here a failed save)
// between the refusal and its durable rejection leaves the order committing, with
// no trace of the refusal; the saga resumed meets the same refusal, the grants
// being idempotent per order, and then it is durable. A cancel of the account's
// earlier order meanwhile frees the allowance, and the resumed saga confirms.
func TestOverLimitRefusalWhoseSaveFailedIsRefusedAgain(t *testing.T) {
	for _, freed := range []bool{false, true} {
		name := map[bool]string{false: "refused_again", true: "confirms_once_an_earlier_order_gave_its_units_back"}[freed]
		t.Run(name, func(t *testing.T) {
			o := placed(t, discounted...)
			stock, promos, saver := stockFor4(), limitedCampaigns(5, 2)(), newSaver()
			saver.failAt[StatusRejected] = errBoom
			ports := Ports{Stock: stock, Promos: promos}
			if err := o.Advance(context.Background(), ports, saver.save, (&clock{}).now); !errors.Is(err, errBoom) {
				t.Fatalf("first attempt: %v; want the failed save", err)
			}
			if o.Status != StatusCommitting || o.OverLimit != nil {
				t.Fatalf("after the failed save: %s, over limit %+v; want committing, no trace", o.Status, o.OverLimit)
			}
			delete(saver.failAt, StatusRejected)
			if freed {
				if err := promos.Return(context.Background(), "spring", "ord_earlier"); err != nil {
					t.Fatal(err)
				}
			}
			// The saga resumes where it left off: its reservations may have been
			// released, so the commit reserves again.
			err := o.Advance(context.Background(), ports, saver.save, (&clock{}).now)
			if freed {
				assertErr(t, err, nil)
				if o.Status != StatusConfirmed || promos.customers[key("spring", acct)] != springUnits {
					t.Fatalf("resumed: %s, account holds %d of spring", o.Status, promos.customers[key("spring", acct)])
				}
				return
			}
			var over *LimitExceededError
			if !errors.As(err, &over) || over.Remaining != 3 || o.Status != StatusRejected {
				t.Fatalf("resumed: %v, %s; want rejected over the limit with 3 left", err, o.Status)
			}
			assertSaved(t, saver, []Status{StatusCommitting, StatusRejected})
			if diff := cmp.Diff(map[string]int64{key("spring", "ord_earlier"): 2}, promos.granted, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("grants after the refusal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCancelGivesTheUnitsBackToTheAccount: a cancelled order's units go back to
// its account's allowance, as they go back to the cap.
func TestCancelGivesTheUnitsBackToTheAccount(t *testing.T) {
	o := placed(t, discounted...)
	stock, promos, saver := stockFor4(), limitedCampaigns(4, 0)(), newSaver()
	ports := Ports{Stock: stock, Promos: promos}
	if err := o.Advance(context.Background(), ports, saver.save, (&clock{}).now); err != nil {
		t.Fatal(err)
	}
	if promos.customers[key("spring", acct)] != springUnits {
		t.Fatalf("after the order the account holds %d of spring", promos.customers[key("spring", acct)])
	}
	if err := o.Cancel(context.Background(), saver.save, (&clock{}).now); err != nil {
		t.Fatal(err)
	}
	if err := o.Advance(context.Background(), ports, saver.save, (&clock{}).now); err != nil {
		t.Fatal(err)
	}
	if o.Status != StatusCancelled || promos.customers[key("spring", acct)] != 0 {
		t.Fatalf("after the cancel: %s, the account holds %d of spring; want cancelled, 0", o.Status, promos.customers[key("spring", acct)])
	}
}

// TestOverLimitSurvivesTheSnapshot: the refusal is stored with the rejected order.
func TestOverLimitSurvivesTheSnapshot(t *testing.T) {
	o := withStatus(t, StatusRejected, discounted...)
	o.OverLimit = &LimitExceededError{PromoID: "spring", Remaining: 2}
	state, err := Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(state)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(back.OverLimit, o.OverLimit) {
		t.Fatalf("decoded over limit %+v, want %+v", back.OverLimit, o.OverLimit)
	}
	err = back.Advance(context.Background(), Ports{}, nil, nil)
	if got := new(LimitExceededError); !errors.As(err, &got) || *got != *o.OverLimit {
		t.Fatalf("Advance of the decoded rejection = %v; want the limit it was refused for", err)
	}
}
