package order

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeCampaign is what a fakePromos knows of one campaign.
type fakeCampaign struct {
	Left   int64 // units still given at the discount; -1: no cap
	Active bool
	// PerCustomer is the most units one account holds at the discount (0: no
	// limit).
	PerCustomer int64
}

// fakePromos is an in-memory set of campaigns, idempotent per (promo, order) like
// the promo grain: a repeated Grant of the same units succeeds without a second
// count, and Return of what the order does not hold changes nothing.
type fakePromos struct {
	campaigns map[string]fakeCampaign
	granted   map[string]int64 // units by key(promo, order)
	// customers are the units each account holds, by key(promo, account), and
	// owners the account of each grant, by key(promo, order): campaigns with a
	// limit per customer only.
	customers map[string]int64
	owners    map[string]string

	failures map[string]int // "Grant spring": the next n such calls fail with errBoom

	calls []string // "Grant spring 4", "Return spring", … in the order they came
}

func newPromos(campaigns map[string]fakeCampaign) *fakePromos {
	return &fakePromos{campaigns: campaigns, granted: map[string]int64{}, failures: map[string]int{},
		customers: map[string]int64{}, owners: map[string]string{}}
}

// fail consumes one planned failure of call, as a grain call that timed out would.
func (p *fakePromos) fail(call string) error {
	if p.failures[call] > 0 {
		p.failures[call]--
		return fmt.Errorf("fake: %s: %w", call, errBoom)
	}
	return nil
}

func (p *fakePromos) Grant(_ context.Context, promoID, orderID, accountID string, units int64) error {
	p.calls = append(p.calls, fmt.Sprintf("Grant %s %d", promoID, units))
	if err := p.fail("Grant " + promoID); err != nil {
		return err
	}
	k := key(promoID, orderID)
	if held, ok := p.granted[k]; ok {
		if held != units {
			return fmt.Errorf("fake: grant %s changed from %d to %d units", k, held, units)
		}
		return nil
	}
	c, ok := p.campaigns[promoID]
	switch {
	// wrapped, as the grain adapter does
	case !ok:
		return fmt.Errorf("%w: %s does not exist", ErrPriceChanged, promoID)
	case !c.Active:
		return fmt.Errorf("%w: %s is not active", ErrPriceChanged, promoID)
	case c.Left >= 0 && units > c.Left:
		return fmt.Errorf("%w: %s has %d units left, %d asked", ErrPriceChanged, promoID, c.Left, units)
	case c.PerCustomer > 0 && p.customers[key(promoID, accountID)]+units > c.PerCustomer:
		// as the grain adapter answers a limit refusal
		return &LimitExceededError{PromoID: promoID, Remaining: c.PerCustomer - p.customers[key(promoID, accountID)]}
	}
	if c.Left >= 0 {
		c.Left -= units
		p.campaigns[promoID] = c
	}
	p.granted[k] = units
	if c.PerCustomer > 0 {
		p.customers[key(promoID, accountID)] += units
		p.owners[k] = accountID
	}
	return nil
}

func (p *fakePromos) Return(_ context.Context, promoID, orderID string) error {
	p.calls = append(p.calls, "Return "+promoID)
	if err := p.fail("Return " + promoID); err != nil {
		return err
	}
	k := key(promoID, orderID)
	units, ok := p.granted[k]
	if !ok {
		return nil
	}
	delete(p.granted, k)
	if c := p.campaigns[promoID]; c.Left >= 0 {
		c.Left += units
		p.campaigns[promoID] = c
	}
	if owner, ok := p.owners[k]; ok {
		p.customers[key(promoID, owner)] -= units
		delete(p.owners, k)
	}
	return nil
}

// promoState is what a fakePromos holds, for comparing.
type promoState struct {
	Campaigns map[string]fakeCampaign
	Granted   map[string]int64
}

func (p *fakePromos) state() promoState {
	return promoState{Campaigns: p.campaigns, Granted: p.granted}
}

func assertPromos(t *testing.T, p *fakePromos, want promoState) {
	t.Helper()
	if diff := cmp.Diff(want, p.state(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("promos (-want +got):\n%s", diff)
	}
}

func assertPromoCalls(t *testing.T, p *fakePromos, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, p.calls, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("promo calls (-want +got):\n%s", diff)
	}
}

// assertPriceChanged checks that err is a *PriceChangedError listing promos.
func assertPriceChanged(t *testing.T, err error, promos []string) {
	t.Helper()
	if !errors.Is(err, ErrPriceChanged) {
		t.Fatalf("error = %v, want %v", err, ErrPriceChanged)
	}
	var changed *PriceChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("error %T %v, want *PriceChangedError", err, err)
	}
	if diff := cmp.Diff(promos, changed.Promos); diff != "" {
		t.Fatalf("PriceChangedError.Promos (-want +got):\n%s", diff)
	}
}

// assertOutOfStock checks that err is an *OutOfStockError listing skus.
func assertOutOfStock(t *testing.T, err error, skus []string) {
	t.Helper()
	var oos *OutOfStockError
	if !errors.As(err, &oos) {
		t.Fatalf("error %T %v, want *OutOfStockError", err, err)
	}
	if diff := cmp.Diff(skus, oos.SKUs); diff != "" {
		t.Fatalf("OutOfStockError.SKUs (-want +got):\n%s", diff)
	}
}

// The discounted order of these tests: two lines of "spring", one of "clearance"
// (whose id sorts first although its line comes later), one at list price.
var (
	springA = Line{SKU: "A", PhoneID: "p-a", Name: "Phone A", Quantity: 2, UnitPriceCents: 10000,
		DiscountCents: 2000, PromoID: "spring"}
	clearanceC = Line{SKU: "C", PhoneID: "p-c", Name: "Phone C", Quantity: 3, UnitPriceCents: 999,
		DiscountCents: 300, PromoID: "clearance"}
	springD = Line{SKU: "D", PhoneID: "p-d", Name: "Phone D", Quantity: 2, UnitPriceCents: 50000,
		DiscountCents: 10000, PromoID: "spring"}

	discounted      = []Line{springA, lineB, clearanceC, springD}
	discountedTotal = int64((2*10000 - 2000) + 1*25050 + (3*999 - 300) + (2*50000 - 10000))
)

// Units of the discounted order per campaign, and the grants asked for, in
// campaign id order.
const (
	clearanceUnits = 3
	springUnits    = 4
)

var wantGrants = []string{"Grant clearance 3", "Grant spring 4"}

// stockFor4 is enough stock of A, B, C and D for the discounted order.
func stockFor4() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}) }

// campaigns returns a fakePromos in which both campaigns of the discounted order
// run: clearance capped at 10 units, spring uncapped.
func campaigns() *fakePromos {
	return newPromos(map[string]fakeCampaign{
		"clearance": {Left: 10, Active: true},
		"spring":    {Left: -1, Active: true},
	})
}

// untouchedCampaigns is what campaigns() holds when the order holds nothing.
func untouchedCampaigns() promoState {
	return promoState{Campaigns: map[string]fakeCampaign{
		"clearance": {Left: 10, Active: true},
		"spring":    {Left: -1, Active: true},
	}}
}

// grantedCampaigns is what campaigns() holds once the order took its discounts.
func grantedCampaigns(orderID string) promoState {
	return promoState{
		Campaigns: map[string]fakeCampaign{
			"clearance": {Left: 10 - clearanceUnits, Active: true},
			"spring":    {Left: -1, Active: true},
		},
		Granted: map[string]int64{key("clearance", orderID): clearanceUnits, key("spring", orderID): springUnits},
	}
}

func TestPlaceDiscounts(t *testing.T) {
	id := ID(acct, "key-1")
	later := t0.Add(time.Hour)
	total := func(v int64) *int64 { return &v }
	rejectedByPromos := func(t *testing.T) *Order {
		o := withStatus(t, StatusRejected, discounted...)
		o.RejectedPromos = []string{"spring"}
		return o
	}
	pendingAt := func(created time.Time, lines []Line, total int64) func(Order) Order {
		return func(Order) Order {
			return Order{ID: id, AccountID: acct, RequestHash: hash, Status: StatusPending,
				Lines: lines, Address: addr, Currency: "EUR", TotalCents: total,
				CreatedAt: created, UpdatedAt: later}
		}
	}
	unchanged := func(start Order) Order { return start }
	with := func(l Line, change func(*Line)) Line { change(&l); return l }

	tests := []struct {
		name          string
		start         func(t *testing.T) *Order
		lines         []Line
		expectedTotal *int64
		wantReplay    bool
		wantErr       error
		wantTotal     int64 // PriceChangedError.TotalCents, when wantErr is ErrPriceChanged
		want          func(start Order) Order
	}{
		{
			name:  "place_totals_lines_less_their_discounts",
			start: func(t *testing.T) *Order { return &Order{} },
			lines: discounted,
			want:  pendingAt(later, discounted, discountedTotal),
		},
		{
			name:  "place_accepts_a_discount_of_the_whole_line",
			start: func(t *testing.T) *Order { return &Order{} },
			lines: []Line{with(springA, func(l *Line) { l.DiscountCents = l.Subtotal() }), lineB},
			want: pendingAt(later,
				[]Line{with(springA, func(l *Line) { l.DiscountCents = l.Subtotal() }), lineB}, lineB.Subtotal()),
		},
		{
			name:    "place_refuses_a_discount_above_the_line",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{with(springA, func(l *Line) { l.DiscountCents = l.Subtotal() + 1 }), lineB},
			wantErr: ErrInvalidLine,
			want:    unchanged,
		},
		{
			name:    "place_refuses_a_negative_discount",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{lineB, with(springA, func(l *Line) { l.DiscountCents = -1 })},
			wantErr: ErrInvalidLine,
			want:    unchanged,
		},
		{
			name:    "place_refuses_a_discount_without_a_promo_id",
			start:   func(t *testing.T) *Order { return &Order{} },
			lines:   []Line{with(springA, func(l *Line) { l.PromoID = "" })},
			wantErr: ErrInvalidLine,
			want:    unchanged,
		},
		{
			name:          "place_with_the_expected_total_succeeds",
			start:         func(t *testing.T) *Order { return &Order{} },
			lines:         discounted,
			expectedTotal: total(discountedTotal),
			want:          pendingAt(later, discounted, discountedTotal),
		},
		{
			// the shopper saw the list price; the campaign started since
			name:          "place_with_another_expected_total_is_price_changed_and_changes_nothing",
			start:         func(t *testing.T) *Order { return &Order{} },
			lines:         discounted,
			expectedTotal: total(discountedTotal + 2000),
			wantErr:       ErrPriceChanged,
			wantTotal:     discountedTotal,
			want:          unchanged,
		},
		{
			name:          "place_with_a_zero_expected_total_is_checked_too",
			start:         func(t *testing.T) *Order { return &Order{} },
			lines:         discounted,
			expectedTotal: total(0),
			wantErr:       ErrPriceChanged,
			wantTotal:     discountedTotal,
			want:          unchanged,
		},
		{
			name:          "replay_with_another_expected_total_is_still_a_replay",
			start:         func(t *testing.T) *Order { return withStatus(t, StatusConfirmed, discounted...) },
			lines:         discounted,
			expectedTotal: total(discountedTotal + 1),
			wantReplay:    true,
			want:          unchanged,
		},
		{
			name:          "replay_of_a_committing_order_with_another_expected_total_is_still_a_replay",
			start:         func(t *testing.T) *Order { return withStatus(t, StatusCommitting, discounted...) },
			expectedTotal: total(1),
			wantReplay:    true,
			want:          unchanged,
		},
		{
			name:          "order_rejected_by_a_campaign_placed_again_at_list_price_is_pending_without_rejected_promos",
			start:         rejectedByPromos,
			lines:         []Line{lineA, lineB},
			expectedTotal: total(lineA.Subtotal() + lineB.Subtotal()),
			want:          pendingAt(t0, []Line{lineA, lineB}, lineA.Subtotal()+lineB.Subtotal()),
		},
		{
			name:          "order_rejected_by_a_campaign_placed_again_at_another_expected_total_stays_rejected",
			start:         rejectedByPromos,
			lines:         discounted,
			expectedTotal: total(discountedTotal - 1),
			wantErr:       ErrPriceChanged,
			wantTotal:     discountedTotal,
			want:          unchanged,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.start(t)
			start := *o
			start.Lines = slices.Clone(o.Lines)
			replay, err := o.Place(id, acct, hash, "EUR", tc.lines, addr, tc.expectedTotal, 0, later)
			assertErr(t, err, tc.wantErr)
			if errors.Is(tc.wantErr, ErrPriceChanged) {
				var changed *PriceChangedError
				if !errors.As(err, &changed) {
					t.Fatalf("Place() error %T %v, want *PriceChangedError", err, err)
				}
				if diff := cmp.Diff(&PriceChangedError{TotalCents: tc.wantTotal}, changed); diff != "" {
					t.Fatalf("PriceChangedError (-want +got):\n%s", diff)
				}
			}
			if replay != tc.wantReplay {
				t.Fatalf("Place() replay = %v, want %v", replay, tc.wantReplay)
			}
			if diff := cmp.Diff(tc.want(start), *o); diff != "" {
				t.Fatalf("order (-want +got):\n%s", diff)
			}
			if tc.wantErr != nil && !start.Exists() && o.Exists() {
				t.Fatalf("a refused Place() left the fresh order existing")
			}
		})
	}
}

func TestOrderDiscountCents(t *testing.T) {
	o := placed(t, discounted...)
	if got, want := o.DiscountCents(), int64(2000+300+10000); got != want {
		t.Fatalf("DiscountCents() = %d, want %d", got, want)
	}
	var list int64
	for _, l := range o.Lines {
		list += l.Subtotal()
	}
	if o.TotalCents != list-o.DiscountCents() {
		t.Fatalf("TotalCents %d, want list %d less discounts %d", o.TotalCents, list, o.DiscountCents())
	}
}

func TestAdvanceDiscounts(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	nothingSold := stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}}
	allSold := stockState{
		Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
		Sold:      map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
	}
	allReserved := stockState{
		Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
		Reserved:  map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
	}
	refusing := func(change func(p *fakePromos)) func() *fakePromos {
		return func() *fakePromos {
			p := campaigns()
			change(p)
			return p
		}
	}
	grantedBeforeTheCrash := func() *fakePromos {
		p := campaigns()
		_ = p.Grant(context.Background(), "clearance", id, acct, clearanceUnits)
		_ = p.Grant(context.Background(), "spring", id, acct, springUnits)
		p.calls = nil
		return p
	}

	tests := []struct {
		name     string
		order    func(t *testing.T) *Order
		stock    func() *fakeStock
		promos   func() *fakePromos
		failSave map[Status]error

		wantErr            error
		wantPriceChanged   []string // PriceChangedError.Promos, when wantErr is ErrPriceChanged
		wantOutOfStock     []string // OutOfStockError.SKUs, when wantErr is ErrOutOfStock
		wantStatus         Status
		wantRejectedPromos []string
		wantRejectedSKUs   []string
		wantSaved          []Status
		wantStock          stockState
		wantPromos         promoState
		wantPromoCalls     []string
	}{
		{
			name:           "advance_grants_each_campaign_its_summed_units_then_confirms",
			order:          func(t *testing.T) *Order { return placed(t, discounted...) },
			stock:          stockFor4,
			promos:         campaigns,
			wantStatus:     StatusConfirmed,
			wantSaved:      []Status{StatusCommitting, StatusConfirmed},
			wantStock:      allSold,
			wantPromos:     grantedCampaigns(id),
			wantPromoCalls: wantGrants,
		},
		{
			name:  "campaign_with_exactly_the_summed_units_left_grants_them_all",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: stockFor4,
			promos: refusing(func(p *fakePromos) {
				p.campaigns["spring"] = fakeCampaign{Left: springUnits, Active: true}
			}),
			wantStatus: StatusConfirmed,
			wantSaved:  []Status{StatusCommitting, StatusConfirmed},
			wantStock:  allSold,
			wantPromos: promoState{
				Campaigns: map[string]fakeCampaign{
					"clearance": {Left: 10 - clearanceUnits, Active: true},
					"spring":    {Left: 0, Active: true},
				},
				Granted: map[string]int64{key("clearance", id): clearanceUnits, key("spring", id): springUnits},
			},
			wantPromoCalls: wantGrants,
		},
		{
			name:  "refused_campaign_rejects_returns_the_grants_taken_and_releases_every_reservation",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: stockFor4,
			promos: refusing(func(p *fakePromos) {
				p.campaigns["spring"] = fakeCampaign{Left: -1, Active: false}
			}),
			wantErr:            ErrPriceChanged,
			wantPriceChanged:   []string{"spring"},
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"spring"},
			wantSaved:          []Status{StatusCommitting, StatusRejected},
			wantStock:          nothingSold,
			wantPromos: promoState{Campaigns: map[string]fakeCampaign{
				"clearance": {Left: 10, Active: true},
				"spring":    {Left: -1, Active: false},
			}},
			wantPromoCalls: append(slices.Clone(wantGrants), "Return clearance", "Return spring"),
		},
		{
			// each spring line alone (2 units) fits the 3 left; the order's 4 do not
			name:  "campaign_short_of_the_summed_units_is_refused",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: stockFor4,
			promos: refusing(func(p *fakePromos) {
				p.campaigns["spring"] = fakeCampaign{Left: 3, Active: true}
			}),
			wantErr:            ErrPriceChanged,
			wantPriceChanged:   []string{"spring"},
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"spring"},
			wantSaved:          []Status{StatusCommitting, StatusRejected},
			wantStock:          nothingSold,
			wantPromos: promoState{Campaigns: map[string]fakeCampaign{
				"clearance": {Left: 10, Active: true},
				"spring":    {Left: 3, Active: true},
			}},
			wantPromoCalls: append(slices.Clone(wantGrants), "Return clearance", "Return spring"),
		},
		{
			name:  "every_refusing_campaign_is_listed_in_id_order",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: stockFor4,
			promos: refusing(func(p *fakePromos) {
				delete(p.campaigns, "clearance") // ended and gone
				p.campaigns["spring"] = fakeCampaign{Left: 0, Active: true}
			}),
			wantErr:            ErrPriceChanged,
			wantPriceChanged:   []string{"clearance", "spring"},
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"clearance", "spring"},
			wantSaved:          []Status{StatusCommitting, StatusRejected},
			wantStock:          nothingSold,
			wantPromos:         promoState{Campaigns: map[string]fakeCampaign{"spring": {Left: 0, Active: true}}},
			wantPromoCalls:     append(slices.Clone(wantGrants), "Return clearance", "Return spring"),
		},
		{
			name:  "transient_grant_failure_stays_committing_keeping_reservations_and_grants_taken",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: stockFor4,
			promos: refusing(func(p *fakePromos) {
				p.failures["Grant spring"] = 1
			}),
			wantErr:    errBoom,
			wantStatus: StatusCommitting,
			wantSaved:  []Status{StatusCommitting},
			wantStock:  allReserved,
			wantPromos: promoState{
				Campaigns: map[string]fakeCampaign{
					"clearance": {Left: 10 - clearanceUnits, Active: true},
					"spring":    {Left: -1, Active: true},
				},
				Granted: map[string]int64{key("clearance", id): clearanceUnits},
			},
			wantPromoCalls: wantGrants,
		},
		{
			// a grant is no hold that expires: none may be taken before the
			// order is sure to finish its saga
			name:       "save_failure_at_committing_takes_no_grant",
			order:      func(t *testing.T) *Order { return placed(t, discounted...) },
			stock:      stockFor4,
			promos:     campaigns,
			failSave:   map[Status]error{StatusCommitting: errBoom},
			wantErr:    errBoom,
			wantStatus: StatusPending,
			wantStock:  nothingSold,
			wantPromos: untouchedCampaigns(),
		},
		{
			name:       "out_of_stock_at_reserve_takes_no_grant",
			order:      func(t *testing.T) *Order { return placed(t, discounted...) },
			stock:      func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 5, "C": 2, "D": 5}) },
			promos:     campaigns,
			wantErr:    ErrOutOfStock,
			wantStatus: StatusRejected,
			wantStock: stockState{
				Available: map[string]int64{"A": 5, "B": 5, "C": 2, "D": 5},
			},
			wantOutOfStock:   []string{"C"},
			wantRejectedSKUs: []string{"C"},
			wantPromos:       untouchedCampaigns(),
		},
		{
			name:  "out_of_stock_at_commit_returns_the_grants",
			order: func(t *testing.T) *Order { return placed(t, discounted...) },
			stock: func() *fakeStock {
				s := stockFor4()
				s.available["C"] = 3
				s.expireOnCommit["C"] = true
				s.boughtOnExpiry["C"] = true
				return s
			},
			promos:           campaigns,
			wantErr:          ErrOutOfStock,
			wantOutOfStock:   []string{"C"},
			wantStatus:       StatusRejected,
			wantRejectedSKUs: []string{"C"},
			wantSaved:        []Status{StatusCommitting, StatusRejected},
			wantStock: stockState{
				Available: map[string]int64{"A": 5, "B": 5, "C": 0, "D": 5},
				Sold:      map[string]int64{key("C", "other"): 3},
			},
			wantPromos:     untouchedCampaigns(),
			wantPromoCalls: append(slices.Clone(wantGrants), "Return clearance", "Return spring"),
		},
		{
			name:  "resume_from_committing_with_stock_gone_returns_the_grants_taken_before_the_crash",
			order: func(t *testing.T) *Order { return withStatus(t, StatusCommitting, discounted...) },
			stock: func() *fakeStock {
				// A and B sold, C's reservation expired and its units were bought, D reserved
				s := newStock(map[string]int64{"A": 3, "B": 4, "C": 0, "D": 3})
				s.sold[k("A")], s.sold[k("B")], s.reserved[k("D")] = 2, 1, 2
				return s
			},
			promos:           grantedBeforeTheCrash,
			wantErr:          ErrOutOfStock,
			wantOutOfStock:   []string{"C"},
			wantStatus:       StatusRejected,
			wantRejectedSKUs: []string{"C"},
			wantSaved:        []Status{StatusRejected},
			wantStock:        stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 0, "D": 5}},
			wantPromos:       untouchedCampaigns(),
			wantPromoCalls:   append(slices.Clone(wantGrants), "Return clearance", "Return spring"),
		},
		{
			name: "rejected_by_a_campaign_reports_price_changed_and_calls_nothing",
			order: func(t *testing.T) *Order {
				o := withStatus(t, StatusRejected, discounted...)
				o.RejectedPromos = []string{"spring"}
				return o
			},
			stock:              stockFor4,
			promos:             campaigns,
			wantErr:            ErrPriceChanged,
			wantPriceChanged:   []string{"spring"},
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"spring"},
			wantStock:          nothingSold,
			wantPromos:         untouchedCampaigns(),
		},
		{
			name:           "confirmed_discounted_order_calls_nothing",
			order:          func(t *testing.T) *Order { return withStatus(t, StatusConfirmed, discounted...) },
			stock:          stockFor4,
			promos:         grantedBeforeTheCrash,
			wantStatus:     StatusConfirmed,
			wantStock:      nothingSold,
			wantPromos:     grantedCampaigns(id),
			wantPromoCalls: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.order(t)
			stock, promos, saver := tc.stock(), tc.promos(), newSaver()
			for s, err := range tc.failSave {
				saver.failAt[s] = err
			}
			err := o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, (&clock{}).now)
			assertErr(t, err, tc.wantErr)
			if tc.wantPriceChanged != nil {
				assertPriceChanged(t, err, tc.wantPriceChanged)
			}
			if tc.wantOutOfStock != nil {
				assertOutOfStock(t, err, tc.wantOutOfStock)
			}
			if o.Status != tc.wantStatus {
				t.Fatalf("status = %s, want %s", o.Status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantRejectedPromos, o.RejectedPromos); diff != "" {
				t.Fatalf("RejectedPromos (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRejectedSKUs, o.RejectedSKUs); diff != "" {
				t.Fatalf("RejectedSKUs (-want +got):\n%s", diff)
			}
			assertSaved(t, saver, tc.wantSaved)
			assertStock(t, stock, tc.wantStock)
			assertPromos(t, promos, tc.wantPromos)
			assertPromoCalls(t, promos, tc.wantPromoCalls)
		})
	}
}

// journal interleaves the calls of both ports and the saves, to check their order.
type journal struct{ entries []string }

func (j *journal) add(format string, args ...any) {
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

type journaledStock struct {
	Stock
	j *journal
}

func (s journaledStock) Reserve(ctx context.Context, sku, orderID string, qty int64) error {
	s.j.add("Reserve %s", sku)
	return s.Stock.Reserve(ctx, sku, orderID, qty)
}

func (s journaledStock) Commit(ctx context.Context, sku, orderID string) error {
	s.j.add("Commit %s", sku)
	return s.Stock.Commit(ctx, sku, orderID)
}

func (s journaledStock) Release(ctx context.Context, sku, orderID string) error {
	s.j.add("Release %s", sku)
	return s.Stock.Release(ctx, sku, orderID)
}

func (s journaledStock) Return(ctx context.Context, sku, orderID string) error {
	s.j.add("Return %s", sku)
	return s.Stock.Return(ctx, sku, orderID)
}

type journaledPromos struct {
	Promos
	j *journal
}

func (p journaledPromos) Grant(ctx context.Context, promoID, orderID, accountID string, units int64) error {
	p.j.add("Grant %s %d", promoID, units)
	return p.Promos.Grant(ctx, promoID, orderID, accountID, units)
}

func (p journaledPromos) Return(ctx context.Context, promoID, orderID string) error {
	p.j.add("Return %s", promoID)
	return p.Promos.Return(ctx, promoID, orderID)
}

func (j *journal) ports(stock Stock, promos Promos) Ports {
	return Ports{Stock: journaledStock{stock, j}, Promos: journaledPromos{promos, j}}
}

func (j *journal) save(save SaveFunc) SaveFunc {
	return func(ctx context.Context, o *Order) error {
		err := save(ctx, o)
		if err == nil {
			j.add("save %s", o.Status)
		}
		return err
	}
}

func TestDiscountSagaOrder(t *testing.T) {
	ctx := context.Background()

	t.Run("grants_come_after_committing_is_saved_and_before_any_commit", func(t *testing.T) {
		o := placed(t, discounted...)
		j := &journal{}
		err := o.Advance(ctx, j.ports(stockFor4(), campaigns()), j.save(newSaver().save), (&clock{}).now)
		assertErr(t, err, nil)
		want := []string{
			"Reserve A", "Reserve B", "Reserve C", "Reserve D",
			"save committing",
			"Grant clearance 3", "Grant spring 4",
			"Commit A", "Commit B", "Commit C", "Commit D",
			"save confirmed",
		}
		if diff := cmp.Diff(want, j.entries); diff != "" {
			t.Fatalf("calls (-want +got):\n%s", diff)
		}
	})

	t.Run("refusal_returns_grants_then_releases_then_saves_rejected", func(t *testing.T) {
		o := placed(t, discounted...)
		promos := campaigns()
		promos.campaigns["spring"] = fakeCampaign{Left: -1, Active: false}
		j := &journal{}
		err := o.Advance(ctx, j.ports(stockFor4(), promos), j.save(newSaver().save), (&clock{}).now)
		assertPriceChanged(t, err, []string{"spring"})
		want := []string{
			"Reserve A", "Reserve B", "Reserve C", "Reserve D",
			"save committing",
			"Grant clearance 3", "Grant spring 4",
			"Return clearance", "Return spring",
			"Release A", "Release B", "Release C", "Release D",
			"save rejected",
		}
		if diff := cmp.Diff(want, j.entries); diff != "" {
			t.Fatalf("calls (-want +got):\n%s", diff)
		}
	})

	t.Run("cancel_returns_stock_then_grants", func(t *testing.T) {
		o, stock, promos, saver, c := confirmedWithDiscounts(t)
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		j := &journal{}
		if err := o.Advance(ctx, j.ports(stock, promos), j.save(saver.save), c.now); err != nil {
			t.Fatalf("Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status = %s, want cancelled", o.Status)
		}
		want := []string{
			"Return A", "Return B", "Return C", "Return D",
			"Return clearance", "Return spring",
			"save cancelled",
		}
		if diff := cmp.Diff(want, j.entries); diff != "" {
			t.Fatalf("calls (-want +got):\n%s", diff)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}})
		assertPromos(t, promos, untouchedCampaigns())
	})
}

// confirmedWithDiscounts runs the saga of the discounted order to confirmation.
func confirmedWithDiscounts(t *testing.T) (*Order, *fakeStock, *fakePromos, *fakeSaver, *clock) {
	t.Helper()
	o := placed(t, discounted...)
	stock, promos, saver, c := stockFor4(), campaigns(), newSaver(), &clock{}
	if err := o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, c.now); err != nil {
		t.Fatalf("Advance() = %v", err)
	}
	if o.Status != StatusConfirmed {
		t.Fatalf("status = %s, want confirmed", o.Status)
	}
	saver.saves, promos.calls = nil, nil
	return o, stock, promos, saver, c
}

func TestCancelDiscounts(t *testing.T) {
	ctx := context.Background()
	unsold := stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}}

	t.Run("cancel_returns_the_campaign_units_and_a_second_cancel_changes_nothing", func(t *testing.T) {
		o, stock, promos, saver, c := confirmedWithDiscounts(t)
		for i := range 2 {
			if err := o.Cancel(ctx, saver.save, c.now); err != nil {
				t.Fatalf("Cancel() #%d = %v", i+1, err)
			}
			if err := o.Advance(ctx, Ports{Stock: stock, Promos: promos}, saver.save, c.now); err != nil {
				t.Fatalf("Advance() #%d = %v", i+1, err)
			}
			if o.Status != StatusCancelled {
				t.Fatalf("status = %s, want cancelled", o.Status)
			}
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)
		assertPromos(t, promos, untouchedCampaigns())
		assertPromoCalls(t, promos, []string{"Return clearance", "Return spring"})
	})

	t.Run("transient_grant_return_failure_leaves_cancelling_and_retry_cancels", func(t *testing.T) {
		o, stock, promos, saver, c := confirmedWithDiscounts(t)
		if err := o.Cancel(ctx, saver.save, c.now); err != nil {
			t.Fatalf("Cancel() = %v", err)
		}
		promos.failures["Return spring"] = 1
		ports := Ports{Stock: stock, Promos: promos}
		assertErr(t, o.Advance(ctx, ports, saver.save, c.now), errBoom)
		if o.Status != StatusCancelling || !o.Unfinished() {
			t.Fatalf("status = %s, want cancelling", o.Status)
		}
		assertStock(t, stock, unsold)
		assertPromos(t, promos, promoState{
			Campaigns: untouchedCampaigns().Campaigns,
			Granted:   map[string]int64{key("spring", o.ID): springUnits},
		})

		if err := o.Advance(ctx, ports, saver.save, c.now); err != nil {
			t.Fatalf("retry Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status = %s, want cancelled", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelling, StatusCancelled})
		assertStock(t, stock, unsold)
		assertPromos(t, promos, untouchedCampaigns())
	})

	t.Run("resume_from_cancelling_returns_the_grants_still_held", func(t *testing.T) {
		o := withStatus(t, StatusCancelling, discounted...)
		stock := stockFor4() // the stock went back before the crash
		promos := campaigns()
		_ = promos.Grant(ctx, "spring", o.ID, o.AccountID, springUnits) // clearance went back too
		promos.calls = nil
		saver := newSaver()
		if err := o.Advance(ctx, Ports{Stock: stock, Promos: promos}, saver.save, (&clock{}).now); err != nil {
			t.Fatalf("Advance() = %v", err)
		}
		if o.Status != StatusCancelled {
			t.Fatalf("status = %s, want cancelled", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCancelled})
		assertStock(t, stock, unsold)
		assertPromos(t, promos, untouchedCampaigns())
		assertPromoCalls(t, promos, []string{"Return clearance", "Return spring"})
	})
}

// TestAdvanceDiscountRetries checks that a discounted saga stopped by an error
// finishes when called again, and takes each discount once.
func TestAdvanceDiscountRetries(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	allSold := stockState{
		Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
		Sold:      map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
	}
	nothingSold := stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 5, "D": 5}}
	springPaused := promoState{Campaigns: map[string]fakeCampaign{
		"clearance": {Left: 10, Active: true},
		"spring":    {Left: -1, Active: false},
	}}
	pauseSpring := func(p *fakePromos, _ *fakeSaver) {
		p.campaigns["spring"] = fakeCampaign{Left: -1, Active: false}
	}

	tests := []struct {
		name    string
		breakIt func(p *fakePromos, f *fakeSaver)
		fix     func(p *fakePromos, f *fakeSaver)

		firstStatus Status
		firstStock  stockState
		firstPromos promoState

		wantErr            error
		wantStatus         Status
		wantRejectedPromos []string
		wantSaved          []Status
		wantStock          stockState
		wantPromos         promoState
		wantPromoCalls     []string
	}{
		{
			name:        "transient_grant_failure_then_retry_confirms_without_granting_twice",
			breakIt:     func(p *fakePromos, _ *fakeSaver) { p.failures["Grant spring"] = 1 },
			fix:         func(*fakePromos, *fakeSaver) {},
			firstStatus: StatusCommitting,
			firstStock: stockState{
				Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
				Reserved:  map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
			},
			firstPromos: promoState{
				Campaigns: map[string]fakeCampaign{
					"clearance": {Left: 10 - clearanceUnits, Active: true},
					"spring":    {Left: -1, Active: true},
				},
				Granted: map[string]int64{key("clearance", id): clearanceUnits},
			},
			wantStatus:     StatusConfirmed,
			wantSaved:      []Status{StatusCommitting, StatusConfirmed},
			wantStock:      allSold,
			wantPromos:     grantedCampaigns(id),
			wantPromoCalls: append(slices.Clone(wantGrants), wantGrants...),
		},
		{
			name: "transient_return_failure_while_refusing_stays_committing_then_rejects",
			breakIt: func(p *fakePromos, f *fakeSaver) {
				pauseSpring(p, f)
				p.failures["Return clearance"] = 1
			},
			fix:         func(*fakePromos, *fakeSaver) {},
			firstStatus: StatusCommitting,
			firstStock: stockState{
				Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
				Reserved:  map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
			},
			firstPromos: promoState{
				Campaigns: map[string]fakeCampaign{
					"clearance": {Left: 10 - clearanceUnits, Active: true},
					"spring":    {Left: -1, Active: false},
				},
				Granted: map[string]int64{key("clearance", id): clearanceUnits},
			},
			wantErr:            ErrPriceChanged,
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"spring"},
			wantSaved:          []Status{StatusCommitting, StatusRejected},
			wantStock:          nothingSold,
			wantPromos:         springPaused,
			wantPromoCalls: append(slices.Clone(wantGrants), "Return clearance",
				"Grant clearance 3", "Grant spring 4", "Return clearance", "Return spring"),
		},
		{
			name: "save_failure_at_rejected_stays_committing_then_rejects",
			breakIt: func(p *fakePromos, f *fakeSaver) {
				pauseSpring(p, f)
				f.failAt[StatusRejected] = errBoom
			},
			fix:                func(_ *fakePromos, f *fakeSaver) { delete(f.failAt, StatusRejected) },
			firstStatus:        StatusCommitting,
			firstStock:         nothingSold,
			firstPromos:        springPaused,
			wantErr:            ErrPriceChanged,
			wantStatus:         StatusRejected,
			wantRejectedPromos: []string{"spring"},
			wantSaved:          []Status{StatusCommitting, StatusRejected},
			wantStock:          nothingSold,
			wantPromos:         springPaused,
			wantPromoCalls: append(slices.Clone(wantGrants), "Return clearance", "Return spring",
				"Grant clearance 3", "Grant spring 4", "Return clearance", "Return spring"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := placed(t, discounted...)
			stock, promos, saver, c := stockFor4(), campaigns(), newSaver(), &clock{}
			ports := Ports{Stock: stock, Promos: promos}
			tc.breakIt(promos, saver)

			err := o.Advance(context.Background(), ports, saver.save, c.now)
			assertErr(t, err, errBoom)
			if o.Status != tc.firstStatus {
				t.Fatalf("status after failure = %s, want %s", o.Status, tc.firstStatus)
			}
			assertStock(t, stock, tc.firstStock)
			assertPromos(t, promos, tc.firstPromos)

			tc.fix(promos, saver)
			err = o.Advance(context.Background(), ports, saver.save, c.now)
			assertErr(t, err, tc.wantErr)
			if o.Status != tc.wantStatus {
				t.Fatalf("status after retry = %s, want %s", o.Status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantRejectedPromos, o.RejectedPromos); diff != "" {
				t.Fatalf("RejectedPromos (-want +got):\n%s", diff)
			}
			assertSaved(t, saver, tc.wantSaved)
			assertStock(t, stock, tc.wantStock)
			assertPromos(t, promos, tc.wantPromos)
			assertPromoCalls(t, promos, tc.wantPromoCalls)
		})
	}
}

// TestRefusalWhoseSaveFailedLeavesNoTrace: a refusal that could not be saved
// did not happen; the order is still committing at the price it was placed at, and
// what the retry finds decides its fate alone. The released reservations are
// taken again at commit.
func TestRefusalWhoseSaveFailedLeavesNoTrace(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	// A refusal whose save failed must leave no trace: the order is committing
	// again and its next attempt decides afresh (Order.reject).
	const staleRejection = "a refusal whose save failed was kept"

	// refuseWithoutSaving runs the saga once with spring paused and the rejection's
	// save failing, then lets spring run again.
	refuseWithoutSaving := func(t *testing.T) (*Order, *fakeStock, *fakePromos, *fakeSaver, *clock) {
		t.Helper()
		o := placed(t, discounted...)
		stock, promos, saver, c := stockFor4(), campaigns(), newSaver(), &clock{}
		promos.campaigns["spring"] = fakeCampaign{Left: -1, Active: false}
		saver.failAt[StatusRejected] = errBoom
		assertErr(t, o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, c.now), errBoom)
		if o.Status != StatusCommitting {
			t.Fatalf("status after the failed save = %s, want committing", o.Status)
		}
		delete(saver.failAt, StatusRejected)
		promos.campaigns["spring"] = fakeCampaign{Left: -1, Active: true}
		return o, stock, promos, saver, c
	}

	t.Run("campaign_running_again_confirms_with_no_rejected_promos", func(t *testing.T) {
		o, stock, promos, saver, c := refuseWithoutSaving(t)
		if err := o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, c.now); err != nil {
			t.Fatalf("retry Advance() = %v", err)
		}
		if o.Status != StatusConfirmed {
			t.Fatalf("status = %s, want confirmed", o.Status)
		}
		assertSaved(t, saver, []Status{StatusCommitting, StatusConfirmed})
		assertStock(t, stock, stockState{
			Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
			Sold:      map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
		})
		assertPromos(t, promos, grantedCampaigns(id))
		if len(o.RejectedPromos) > 0 {
			t.Errorf("%s: confirmed order has RejectedPromos %v, want none", staleRejection, o.RejectedPromos)
		}
	})

	t.Run("stock_gone_at_commit_reports_out_of_stock_not_price_changed", func(t *testing.T) {
		o, stock, promos, saver, c := refuseWithoutSaving(t)
		stock.available["C"] = 0 // another order bought C while its reservation was released
		err := o.Advance(context.Background(), Ports{Stock: stock, Promos: promos}, saver.save, c.now)
		if o.Status != StatusRejected {
			t.Fatalf("status = %s, want rejected", o.Status)
		}
		if diff := cmp.Diff([]string{"C"}, o.RejectedSKUs); diff != "" {
			t.Fatalf("RejectedSKUs (-want +got):\n%s", diff)
		}
		assertSaved(t, saver, []Status{StatusCommitting, StatusRejected})
		assertStock(t, stock, stockState{Available: map[string]int64{"A": 5, "B": 5, "C": 0, "D": 5}})
		assertPromos(t, promos, untouchedCampaigns())
		if errors.Is(err, ErrPriceChanged) || len(o.RejectedPromos) > 0 {
			t.Fatalf("%s: Advance() = %v with RejectedPromos %v, want *OutOfStockError [C] and none",
				staleRejection, err, o.RejectedPromos)
		}
		assertOutOfStock(t, err, []string{"C"})
	})
}

// snapshotSaver keeps a copy of the last order it saved, as the store would, so a
// test can drop the order and load it again, as a new activation after a crash.
type snapshotSaver struct {
	*fakeSaver
	last *Order
}

func (s *snapshotSaver) save(ctx context.Context, o *Order) error {
	if err := s.fakeSaver.save(ctx, o); err != nil {
		return err
	}
	s.last = cloneOrder(o)
	return nil
}

func cloneOrder(o *Order) *Order {
	c := *o
	c.Lines = slices.Clone(o.Lines)
	c.RejectedSKUs = slices.Clone(o.RejectedSKUs)
	c.RejectedPromos = slices.Clone(o.RejectedPromos)
	return &c
}

// TestCrashAfterCommittingGrantsOnce: an order whose process died after
// "committing" was saved is loaded again from its snapshot and finishes its saga,
// holding each campaign's units exactly once, wherever the first run stopped.
func TestCrashAfterCommittingGrantsOnce(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	tests := []struct {
		name  string
		crash func(s *fakeStock, p *fakePromos, f *fakeSaver) (recover func())
	}{
		{
			name: "crash_before_any_grant",
			crash: func(_ *fakeStock, p *fakePromos, _ *fakeSaver) func() {
				p.failures["Grant clearance"] = 1
				return func() {}
			},
		},
		{
			name: "crash_between_two_grants",
			crash: func(_ *fakeStock, p *fakePromos, _ *fakeSaver) func() {
				p.failures["Grant spring"] = 1
				return func() {}
			},
		},
		{
			name: "crash_after_the_grants_before_any_commit",
			crash: func(s *fakeStock, _ *fakePromos, _ *fakeSaver) func() {
				s.commitErr["A"] = errBoom
				return func() { delete(s.commitErr, "A") }
			},
		},
		{
			name: "crash_between_two_commits",
			crash: func(s *fakeStock, _ *fakePromos, _ *fakeSaver) func() {
				s.commitErr["C"] = errBoom
				return func() { delete(s.commitErr, "C") }
			},
		},
		{
			name: "crash_before_confirmed_is_saved",
			crash: func(_ *fakeStock, _ *fakePromos, f *fakeSaver) func() {
				f.failAt[StatusConfirmed] = errBoom
				return func() { delete(f.failAt, StatusConfirmed) }
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			stock, promos, c := stockFor4(), campaigns(), &clock{}
			saver := &snapshotSaver{fakeSaver: newSaver()}
			ports := Ports{Stock: stock, Promos: promos}
			recoverFrom := tc.crash(stock, promos, saver.fakeSaver)

			first := placed(t, discounted...)
			assertErr(t, first.Advance(ctx, ports, saver.save, c.now), errBoom)
			if saver.last == nil || saver.last.Status != StatusCommitting {
				t.Fatalf("snapshot before the crash = %+v, want committing", saver.last)
			}
			recoverFrom()

			reloaded := cloneOrder(saver.last)
			if err := reloaded.Advance(ctx, ports, saver.save, c.now); err != nil {
				t.Fatalf("Advance() after reload = %v", err)
			}
			if reloaded.Status != StatusConfirmed || saver.last.Status != StatusConfirmed {
				t.Fatalf("status = %s, saved %s; want confirmed", reloaded.Status, saver.last.Status)
			}
			assertSaved(t, saver.fakeSaver, []Status{StatusCommitting, StatusConfirmed})
			assertStock(t, stock, stockState{
				Available: map[string]int64{"A": 3, "B": 4, "C": 2, "D": 3},
				Sold:      map[string]int64{k("A"): 2, k("B"): 1, k("C"): 3, k("D"): 2},
			})
			assertPromos(t, promos, grantedCampaigns(id))
			for _, call := range promos.calls {
				if call != wantGrants[0] && call != wantGrants[1] {
					t.Fatalf("promo calls %v: want only the grants, asked again", promos.calls)
				}
			}
		})
	}
}

// TestAdvanceWithoutDiscountsNeedsNoPromos: an order without discounted lines
// never calls the Promos port, so a nil one does.
func TestAdvanceWithoutDiscountsNeedsNoPromos(t *testing.T) {
	id := ID(acct, "key-1")
	k := func(sku string) string { return key(sku, id) }
	tests := []struct {
		name       string
		order      func(t *testing.T) *Order
		stock      func() *fakeStock
		cancel     bool // Cancel the confirmed order, then Advance again
		wantErr    error
		wantStatus Status
		wantStock  stockState
	}{
		{
			name:       "plain_order_confirms",
			order:      func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock:      func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 5}) },
			wantStatus: StatusConfirmed,
			wantStock: stockState{
				Available: map[string]int64{"A": 3, "B": 4},
				Sold:      map[string]int64{k("A"): 2, k("B"): 1},
			},
		},
		{
			name:       "plain_order_cancels",
			order:      func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock:      func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 5}) },
			cancel:     true,
			wantStatus: StatusCancelled,
			wantStock:  stockState{Available: map[string]int64{"A": 5, "B": 5}},
		},
		{
			name:       "plain_order_out_of_stock_at_reserve_rejects",
			order:      func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock:      func() *fakeStock { return newStock(map[string]int64{"A": 5, "B": 0}) },
			wantErr:    ErrOutOfStock,
			wantStatus: StatusRejected,
			wantStock:  stockState{Available: map[string]int64{"A": 5, "B": 0}},
		},
		{
			name:  "plain_order_out_of_stock_at_commit_rejects",
			order: func(t *testing.T) *Order { return placed(t, lineA, lineB) },
			stock: func() *fakeStock {
				s := newStock(map[string]int64{"A": 5, "B": 1})
				s.expireOnCommit["B"] = true
				s.boughtOnExpiry["B"] = true
				return s
			},
			wantErr:    ErrOutOfStock,
			wantStatus: StatusRejected,
			wantStock: stockState{
				Available: map[string]int64{"A": 5, "B": 0},
				Sold:      map[string]int64{key("B", "other"): 1},
			},
		},
		{
			name:  "plain_order_resumed_from_committing_confirms",
			order: func(t *testing.T) *Order { return withStatus(t, StatusCommitting, lineA, lineB) },
			stock: func() *fakeStock {
				s := newStock(map[string]int64{"A": 3, "B": 4})
				s.reserved[k("A")], s.reserved[k("B")] = 2, 1
				return s
			},
			wantStatus: StatusConfirmed,
			wantStock: stockState{
				Available: map[string]int64{"A": 3, "B": 4},
				Sold:      map[string]int64{k("A"): 2, k("B"): 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			o, stock, saver, c := tc.order(t), tc.stock(), newSaver(), &clock{}
			ports := Ports{Stock: stock} // no Promos: a call would panic
			err := o.Advance(ctx, ports, saver.save, c.now)
			if tc.cancel {
				assertErr(t, err, nil)
				if err := o.Cancel(ctx, saver.save, c.now); err != nil {
					t.Fatalf("Cancel() = %v", err)
				}
				err = o.Advance(ctx, ports, saver.save, c.now)
			}
			assertErr(t, err, tc.wantErr)
			if o.Status != tc.wantStatus {
				t.Fatalf("status = %s, want %s", o.Status, tc.wantStatus)
			}
			if o.RejectedPromos != nil {
				t.Fatalf("RejectedPromos = %v, want none", o.RejectedPromos)
			}
			assertStock(t, stock, tc.wantStock)
		})
	}
}

func TestPriceChangedError(t *testing.T) {
	err := error(&PriceChangedError{Promos: []string{"clearance", "spring"}})
	if !errors.Is(err, ErrPriceChanged) {
		t.Fatalf("errors.Is(%v, ErrPriceChanged) = false", err)
	}
	if want := ErrPriceChanged.Error() + ": [clearance spring]"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}
