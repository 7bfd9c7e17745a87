package promo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The clock of these tests: campaigns are made and launched at base, open an hour
// later and close two days later.
var (
	base   = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	opens  = base.Add(time.Hour)
	during = opens.Add(time.Minute)
	closes = base.Add(48 * time.Hour)
)

const (
	pixel    = "google-pixel-9-128-obsidian"
	pixelPro = "google-pixel-9-pro-256-porcelain"
	iphone   = "apple-iphone-16-128-black"
)

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// promoSpec is a campaign from opens to closes; capUnits 0 is no cap.
func promoSpec(percent int, brands, skus []string, capUnits int64) Spec {
	return Spec{Name: "Black Friday", PercentOff: percent, Brands: brands, SKUs: skus,
		StartsAt: opens, EndsAt: closes, MaxDiscountedUnits: capUnits}
}

// launchedPromo makes a campaign at base and launches it; held units are granted to
// an order during the campaign, so that a cap has that many fewer units left.
func launchedPromo(t *testing.T, id string, s Spec, held int64) *Campaign {
	t.Helper()
	c, err := New(id, s, base)
	must(t, err)
	must(t, c.Launch(base))
	if held > 0 {
		must(t, c.Grant("ord_held", "", held, during))
	}
	return c
}

func pixelLine(qty int64) PriceLine {
	return PriceLine{SKU: pixel, Brand: "Google", ListCents: 79999, Quantity: qty}
}

func pixelProLine(qty int64) PriceLine {
	return PriceLine{SKU: pixelPro, Brand: "Google", ListCents: 109999, Quantity: qty}
}

func iphoneLine(qty int64) PriceLine {
	return PriceLine{SKU: iphone, Brand: "Apple", ListCents: 99999, Quantity: qty}
}

func TestPrice(t *testing.T) {
	brand10 := launchedPromo(t, "p_brand10", promoSpec(10, []string{"Google"}, nil, 0), 0)
	brand30 := launchedPromo(t, "p_brand30", promoSpec(30, []string{"Google"}, nil, 0), 0)
	sku15 := launchedPromo(t, "p_sku15", promoSpec(15, nil, []string{pixel}, 0), 0)
	sku25 := launchedPromo(t, "p_sku25", promoSpec(25, nil, []string{pixel}, 0), 0)
	apple20 := launchedPromo(t, "p_apple20", promoSpec(20, []string{"Apple"}, nil, 0), 0)
	capped40 := launchedPromo(t, "p_capped40", promoSpec(40, []string{"Google"}, nil, 5), 2) // 3 left
	capped50 := launchedPromo(t, "p_capped50", promoSpec(50, []string{"Google"}, nil, 3), 1) // 2 left
	if capped40.Remaining() != 3 || capped50.Remaining() != 2 {
		t.Fatalf("set-up: %d and %d units left, want 3 and 2", capped40.Remaining(), capped50.Remaining())
	}

	tests := []struct {
		name      string
		campaigns []*Campaign
		lines     []PriceLine
		at        time.Time
		exclude   []string
		want      []Priced
	}{
		{
			name:  "price_without_campaigns_discounts_nothing",
			lines: []PriceLine{pixelLine(2), iphoneLine(1)},
			at:    during,
			want:  []Priced{{}, {}},
		},
		{
			name:      "price_gives_a_sku_campaign_over_a_weaker_brand_campaign",
			campaigns: []*Campaign{brand10, sku25},
			lines:     []PriceLine{pixelLine(2)},
			at:        during,
			want:      []Priced{{PromoID: "p_sku25", UnitDiscountCents: 20000, DiscountCents: 40000}},
		},
		{
			name:      "price_gives_a_brand_campaign_over_a_weaker_sku_campaign",
			campaigns: []*Campaign{sku15, brand30},
			lines:     []PriceLine{pixelLine(2)},
			at:        during,
			want:      []Priced{{PromoID: "p_brand30", UnitDiscountCents: 24000, DiscountCents: 48000}},
		},
		{
			name:      "price_never_stacks_campaigns_covering_the_same_line",
			campaigns: []*Campaign{brand10, sku15, sku25, brand30},
			lines:     []PriceLine{pixelLine(1)},
			at:        during,
			want:      []Priced{{PromoID: "p_brand30", UnitDiscountCents: 24000, DiscountCents: 24000}},
		},
		{
			name:      "price_gives_each_line_its_own_best_campaign",
			campaigns: []*Campaign{brand10, sku25, apple20},
			lines:     []PriceLine{pixelLine(1), pixelProLine(1), iphoneLine(1)},
			at:        during,
			want: []Priced{
				{PromoID: "p_sku25", UnitDiscountCents: 20000, DiscountCents: 20000},
				{PromoID: "p_brand10", UnitDiscountCents: 11000, DiscountCents: 11000},
				{PromoID: "p_apple20", UnitDiscountCents: 20000, DiscountCents: 20000},
			},
		},
		{
			name:      "price_leaves_a_line_no_campaign_covers",
			campaigns: []*Campaign{brand10},
			lines:     []PriceLine{iphoneLine(1)},
			at:        during,
			want:      []Priced{{}},
		},
		{
			name:      "price_discounts_nothing_before_the_campaign_starts",
			campaigns: []*Campaign{sku25},
			lines:     []PriceLine{pixelLine(1)},
			at:        base,
			want:      []Priced{{}},
		},
		{
			name:      "price_discounts_nothing_from_the_campaign_end",
			campaigns: []*Campaign{sku25},
			lines:     []PriceLine{pixelLine(1)},
			at:        closes,
			want:      []Priced{{}},
		},
		{
			name:      "price_skips_an_excluded_campaign",
			campaigns: []*Campaign{brand10, sku25},
			lines:     []PriceLine{pixelLine(2)},
			at:        during,
			exclude:   []string{"p_sku25"},
			want:      []Priced{{PromoID: "p_brand10", UnitDiscountCents: 8000, DiscountCents: 16000}},
		},
		{
			name:      "price_discounts_nothing_when_every_covering_campaign_is_excluded",
			campaigns: []*Campaign{brand10, sku25},
			lines:     []PriceLine{pixelLine(2)},
			at:        during,
			exclude:   []string{"p_sku25", "p_brand10"},
			want:      []Priced{{}},
		},
		{
			name:      "price_ignores_an_excluded_id_of_no_campaign",
			campaigns: []*Campaign{brand10, sku25},
			lines:     []PriceLine{pixelLine(2)},
			at:        during,
			exclude:   []string{"p_gone"},
			want:      []Priced{{PromoID: "p_sku25", UnitDiscountCents: 20000, DiscountCents: 40000}},
		},
		{
			// Each line alone fits in the 3 units left; together they take 4.
			name:      "price_skips_a_campaign_whose_cap_cannot_cover_the_order",
			campaigns: []*Campaign{brand10, capped40},
			lines:     []PriceLine{pixelLine(2), pixelProLine(2)},
			at:        during,
			want: []Priced{
				{PromoID: "p_brand10", UnitDiscountCents: 8000, DiscountCents: 16000},
				{PromoID: "p_brand10", UnitDiscountCents: 11000, DiscountCents: 22000},
			},
		},
		{
			name:      "price_uses_a_capped_campaign_with_exactly_enough_units_left",
			campaigns: []*Campaign{brand10, capped40},
			lines:     []PriceLine{pixelLine(2), pixelProLine(1)},
			at:        during,
			want: []Priced{
				{PromoID: "p_capped40", UnitDiscountCents: 32000, DiscountCents: 64000},
				{PromoID: "p_capped40", UnitDiscountCents: 44000, DiscountCents: 44000},
			},
		},
		{
			name:      "price_discounts_nothing_when_the_only_campaign_is_short",
			campaigns: []*Campaign{capped40},
			lines:     []PriceLine{pixelLine(4)},
			at:        during,
			want:      []Priced{{}},
		},
		{
			name:      "price_keeps_other_campaigns_when_one_is_short",
			campaigns: []*Campaign{capped40, apple20},
			lines:     []PriceLine{pixelLine(2), pixelProLine(2), iphoneLine(3)},
			at:        during,
			want: []Priced{
				{},
				{},
				{PromoID: "p_apple20", UnitDiscountCents: 20000, DiscountCents: 60000},
			},
		},
		{
			// 50% has 2 left for 3 units; 40% has exactly 3.
			name:      "price_falls_back_from_a_short_campaign_to_the_next_capped_one_that_fits",
			campaigns: []*Campaign{brand10, capped40, capped50},
			lines:     []PriceLine{pixelLine(2), pixelProLine(1)},
			at:        during,
			want: []Priced{
				{PromoID: "p_capped40", UnitDiscountCents: 32000, DiscountCents: 64000},
				{PromoID: "p_capped40", UnitDiscountCents: 44000, DiscountCents: 44000},
			},
		},
		{
			name:      "price_falls_back_past_every_short_campaign",
			campaigns: []*Campaign{capped50, brand10, capped40},
			lines:     []PriceLine{pixelLine(2), pixelProLine(2)},
			at:        during,
			want: []Priced{
				{PromoID: "p_brand10", UnitDiscountCents: 8000, DiscountCents: 16000},
				{PromoID: "p_brand10", UnitDiscountCents: 11000, DiscountCents: 22000},
			},
		},
		{
			name:      "price_skips_a_short_campaign_and_an_excluded_one_together",
			campaigns: []*Campaign{brand10, capped40, capped50},
			lines:     []PriceLine{pixelLine(2), pixelProLine(1)},
			at:        during,
			exclude:   []string{"p_capped40"},
			want: []Priced{
				{PromoID: "p_brand10", UnitDiscountCents: 8000, DiscountCents: 16000},
				{PromoID: "p_brand10", UnitDiscountCents: 11000, DiscountCents: 11000},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Price(tc.campaigns, tc.lines, tc.at, tc.exclude)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("Price (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("price_leaves_the_callers_exclude_list_alone", func(t *testing.T) {
		exclude := make([]string, 1, 8) // room for Price to append into, were it to
		exclude[0] = "p_gone"
		Price([]*Campaign{brand10, capped40, capped50}, []PriceLine{pixelLine(2), pixelProLine(2)}, during, exclude)
		if diff := cmp.Diff([]string{"p_gone", "", ""}, exclude[:3]); diff != "" {
			t.Fatalf("exclude's backing array (-want +got):\n%s", diff)
		}
	})
	t.Run("price_changes_no_campaign", func(t *testing.T) {
		Price([]*Campaign{brand10, capped40, capped50}, []PriceLine{pixelLine(2), pixelProLine(2)}, during, nil)
		if capped40.Remaining() != 3 || capped50.Remaining() != 2 || capped40.Orders() != 1 {
			t.Fatalf("after pricing: %d and %d left, %d orders", capped40.Remaining(), capped50.Remaining(), capped40.Orders())
		}
	})
}

// TestPriceAddsUpForEveryPercent: for every percentage, list prices with odd cents and
// quantities 1 to 5, a line's discount is its unit discount times its quantity
// (rounded half up once, per unit), the lines add up to the subtotal less the
// discount exactly, and no discount exceeds its line.
func TestPriceAddsUpForEveryPercent(t *testing.T) {
	prices := []int64{1, 99, 101, 12345, 79999, 100000003}
	var lines []PriceLine
	for _, p := range prices {
		for qty := int64(1); qty <= 5; qty++ {
			lines = append(lines, PriceLine{SKU: fmt.Sprintf("sku-%d-%d", p, qty), Brand: "Google", ListCents: p, Quantity: qty})
		}
	}
	for percent := MinPercentOff; percent <= MaxPercentOff; percent++ {
		id := fmt.Sprintf("p_%d", percent)
		c := launchedPromo(t, id, promoSpec(percent, []string{"Google"}, nil, 0), 0)
		got := Price([]*Campaign{c}, lines, during, nil)
		if len(got) != len(lines) {
			t.Fatalf("%d%%: %d priced lines for %d lines", percent, len(got), len(lines))
		}
		var subtotal, discount, linesTotal int64
		for i, l := range lines {
			// Half a cent and up rounds up: an oracle apart from UnitDiscount.
			wantUnit := l.ListCents * int64(percent) / 100
			if l.ListCents*int64(percent)%100 >= 50 {
				wantUnit++
			}
			want := Priced{PromoID: id, UnitDiscountCents: wantUnit, DiscountCents: wantUnit * l.Quantity}
			if diff := cmp.Diff(want, got[i]); diff != "" {
				t.Fatalf("%d%% of %d x%d (-want +got):\n%s", percent, l.ListCents, l.Quantity, diff)
			}
			lineList := l.ListCents * l.Quantity
			if got[i].DiscountCents < 0 || got[i].DiscountCents > lineList {
				t.Fatalf("%d%% of %d x%d: discount %d of a %d line", percent, l.ListCents, l.Quantity, got[i].DiscountCents, lineList)
			}
			subtotal += lineList
			discount += got[i].DiscountCents
			linesTotal += lineList - got[i].DiscountCents
		}
		if linesTotal != subtotal-discount {
			t.Fatalf("%d%%: lines total %d, subtotal %d less discount %d is %d", percent, linesTotal, subtotal, discount, subtotal-discount)
		}
	}
}

// clockState is what a campaign shows after one step of the clock.
type clockState struct {
	Changed   bool // Settle's answer; false for other steps
	Status    Status
	Activated bool // TakeChange's activated
	Next      time.Time
	HasNext   bool
}

type clockStep struct {
	do   string // "settle", "launch" or "pause"
	at   time.Time
	want clockState
}

func TestSettleFollowsTheClock(t *testing.T) {
	launched := func(t *testing.T) *Campaign {
		t.Helper()
		return launchedPromo(t, "p_clock", promoSpec(20, []string{"Google"}, nil, 0), 0)
	}
	beforeOpen := opens.Add(-time.Nanosecond)
	beforeClose := closes.Add(-time.Nanosecond)
	tests := []struct {
		name            string
		campaign        func(t *testing.T) *Campaign
		steps           []clockStep
		everActivated   bool
		wantStoredStage string
	}{
		{
			name:     "settle_changes_nothing_before_starts_at",
			campaign: launched,
			steps: []clockStep{
				{"settle", base, clockState{Status: StatusScheduled, Next: opens, HasNext: true}},
				{"settle", beforeOpen, clockState{Status: StatusScheduled, Next: opens, HasNext: true}},
			},
			wantStoredStage: storedLaunched,
		},
		{
			name:     "settle_activates_once_at_exactly_starts_at",
			campaign: launched,
			steps: []clockStep{
				{"settle", opens, clockState{Changed: true, Status: StatusActive, Activated: true, Next: closes, HasNext: true}},
				{"settle", opens, clockState{Status: StatusActive, Next: closes, HasNext: true}},
				{"settle", during, clockState{Status: StatusActive, Next: closes, HasNext: true}},
			},
			everActivated:   true,
			wantStoredStage: storedLaunched,
		},
		{
			name: "settle_activates_a_campaign_launched_after_starts_at",
			campaign: func(t *testing.T) *Campaign {
				c, err := New("p_late", promoSpec(20, []string{"Google"}, nil, 0), base)
				must(t, err)
				return c
			},
			steps: []clockStep{
				{"settle", during, clockState{Status: StatusDraft}},
				// Launched after its start and not settled yet: the activation is due
				// at once (at its start, which has passed), not at its end.
				{"launch", during, clockState{Status: StatusActive, Next: opens, HasNext: true}},
				{"settle", during, clockState{Changed: true, Status: StatusActive, Activated: true, Next: closes, HasNext: true}},
			},
			everActivated:   true,
			wantStoredStage: storedLaunched,
		},
		{
			name:     "a_campaign_paused_and_launched_again_does_not_activate_twice",
			campaign: launched,
			steps: []clockStep{
				{"settle", opens, clockState{Changed: true, Status: StatusActive, Activated: true, Next: closes, HasNext: true}},
				{"pause", during, clockState{Status: StatusPaused}},
				{"settle", during, clockState{Status: StatusPaused}},
				{"launch", during.Add(time.Minute), clockState{Status: StatusActive, Next: closes, HasNext: true}},
				{"settle", during.Add(time.Minute), clockState{Status: StatusActive, Next: closes, HasNext: true}},
			},
			everActivated:   true,
			wantStoredStage: storedLaunched,
		},
		{
			name:     "settle_ends_a_launched_campaign_at_exactly_ends_at",
			campaign: launched,
			steps: []clockStep{
				{"settle", opens, clockState{Changed: true, Status: StatusActive, Activated: true, Next: closes, HasNext: true}},
				{"settle", beforeClose, clockState{Status: StatusActive, Next: closes, HasNext: true}},
				{"settle", closes, clockState{Changed: true, Status: StatusEnded}},
				{"settle", closes.Add(time.Hour), clockState{Status: StatusEnded}},
			},
			everActivated:   true,
			wantStoredStage: storedEnded,
		},
		{
			// The grain slept through the whole window: the campaign ends unannounced.
			name:     "settle_ends_a_campaign_first_seen_after_its_end_without_activating_it",
			campaign: launched,
			steps: []clockStep{
				{"settle", closes, clockState{Changed: true, Status: StatusEnded}},
			},
			wantStoredStage: storedEnded,
		},
		{
			name: "a_draft_never_settles",
			campaign: func(t *testing.T) *Campaign {
				c, err := New("p_draft", promoSpec(20, []string{"Google"}, nil, 0), base)
				must(t, err)
				return c
			},
			steps: []clockStep{
				{"settle", opens, clockState{Status: StatusDraft}},
				{"settle", during, clockState{Status: StatusDraft}},
				{"settle", closes, clockState{Status: StatusDraft}},
			},
			wantStoredStage: storedDraft,
		},
		{
			name:     "a_paused_campaign_never_settles",
			campaign: launched,
			steps: []clockStep{
				{"pause", base, clockState{Status: StatusPaused}},
				{"settle", opens, clockState{Status: StatusPaused}},
				{"settle", closes, clockState{Status: StatusEnded}}, // by the clock, not by a write
			},
			wantStoredStage: storedPaused,
		},
		{
			name: "an_ended_campaign_never_settles",
			campaign: func(t *testing.T) *Campaign {
				c := launched(t)
				c.End()
				return c
			},
			steps: []clockStep{
				{"settle", opens, clockState{Status: StatusEnded}},
				{"settle", closes, clockState{Status: StatusEnded}},
			},
			wantStoredStage: storedEnded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.campaign(t)
			for i, s := range tc.steps {
				var got clockState
				switch s.do {
				case "settle":
					got.Changed = c.Settle(s.at)
				case "launch":
					must(t, c.Launch(s.at))
				case "pause":
					must(t, c.Pause(s.at))
				default:
					t.Fatalf("step %d: unknown step %q", i, s.do)
				}
				got.Status = c.StatusAt(s.at)
				_, got.Activated = c.TakeChange()
				got.Next, got.HasNext = c.NextChange(s.at)
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Fatalf("step %d (%s at %s) (-want +got):\n%s", i, s.do, s.at.Format(time.RFC3339Nano), diff)
				}
			}
			if c.Activated() != tc.everActivated {
				t.Errorf("Activated = %v, want %v", c.Activated(), tc.everActivated)
			}
			if got := c.Snapshot().Stage; got != tc.wantStoredStage {
				t.Errorf("stored stage %q, want %q", got, tc.wantStoredStage)
			}
		})
	}
}

func TestTakeChangeCarriesTheGrantLedger(t *testing.T) {
	grant := func(order string, units int64) func(*testing.T, *Campaign) {
		return func(t *testing.T, c *Campaign) {
			t.Helper()
			must(t, c.Grant(order, "", units, during))
		}
	}
	ret := func(order string) func(*testing.T, *Campaign) {
		return func(t *testing.T, c *Campaign) { t.Helper(); must(t, c.Return(order)) }
	}
	tests := []struct {
		name string
		// written are granted, then taken by a write, before the batch.
		written map[string]int64
		batch   []func(*testing.T, *Campaign)
		want    GrantsChange
		// wantHeld is every order's units after the batch.
		wantHeld map[string]int64
	}{
		{
			name:     "grant_adds_to_added",
			batch:    []func(*testing.T, *Campaign){grant("ord_a", 2), grant("ord_b", 1)},
			want:     GrantsChange{Added: granted(map[string]int64{"ord_a": 2, "ord_b": 1})},
			wantHeld: map[string]int64{"ord_a": 2, "ord_b": 1},
		},
		{
			name:     "a_retried_grant_of_a_written_order_adds_nothing",
			written:  map[string]int64{"ord_a": 2},
			batch:    []func(*testing.T, *Campaign){grant("ord_a", 2)},
			want:     GrantsChange{},
			wantHeld: map[string]int64{"ord_a": 2},
		},
		{
			name:     "return_of_an_unwritten_grant_removes_it_from_added_and_records_no_return",
			batch:    []func(*testing.T, *Campaign){grant("ord_a", 2), grant("ord_b", 1), ret("ord_a")},
			want:     GrantsChange{Added: granted(map[string]int64{"ord_b": 1})},
			wantHeld: map[string]int64{"ord_b": 1},
		},
		{
			name:     "return_of_a_written_grant_is_recorded_in_returned",
			written:  map[string]int64{"ord_a": 2, "ord_b": 1},
			batch:    []func(*testing.T, *Campaign){ret("ord_a")},
			want:     GrantsChange{Returned: []string{"ord_a"}},
			wantHeld: map[string]int64{"ord_b": 1},
		},
		{
			name:     "a_retried_return_is_recorded_once",
			written:  map[string]int64{"ord_a": 2},
			batch:    []func(*testing.T, *Campaign){ret("ord_a"), ret("ord_a")},
			want:     GrantsChange{Returned: []string{"ord_a"}},
			wantHeld: map[string]int64{},
		},
		{
			name:     "return_of_an_order_without_a_grant_records_nothing",
			written:  map[string]int64{"ord_a": 2},
			batch:    []func(*testing.T, *Campaign){ret("ord_never")},
			want:     GrantsChange{},
			wantHeld: map[string]int64{"ord_a": 2},
		},
		{
			// The store deletes the returned rows first, then inserts the added ones.
			name:     "return_then_grant_again_in_one_batch_yields_both",
			written:  map[string]int64{"ord_a": 2},
			batch:    []func(*testing.T, *Campaign){ret("ord_a"), grant("ord_a", 3)},
			want:     GrantsChange{Added: granted(map[string]int64{"ord_a": 3}), Returned: []string{"ord_a"}},
			wantHeld: map[string]int64{"ord_a": 3},
		},
		{
			name:     "return_grant_and_return_again_in_one_batch_deletes_the_written_row",
			written:  map[string]int64{"ord_a": 2},
			batch:    []func(*testing.T, *Campaign){ret("ord_a"), grant("ord_a", 3), ret("ord_a")},
			want:     GrantsChange{Returned: []string{"ord_a"}},
			wantHeld: map[string]int64{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := launchedPromo(t, "p_ledger", promoSpec(20, []string{"Google"}, nil, 10), 0)
			for order, units := range tc.written {
				must(t, c.Grant(order, "", units, during))
			}
			c.TakeChange()
			for _, step := range tc.batch {
				step(t, c)
			}
			got, _ := c.TakeChange()
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("TakeChange (-want +got):\n%s", diff)
			}
			if got.Empty() != tc.want.Empty() {
				t.Errorf("Empty = %v, want %v", got.Empty(), tc.want.Empty())
			}
			if again, _ := c.TakeChange(); !again.Empty() {
				t.Errorf("a second TakeChange carries %+v, want nothing", again)
			}
			var units int64
			for _, u := range tc.wantHeld {
				units += u
			}
			if diff := cmp.Diff(tc.wantHeld, heldUnits(c.Snapshot().Grants), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("grants held (-want +got):\n%s", diff)
			}
			if c.DiscountedUnits() != units || c.Orders() != int64(len(tc.wantHeld)) || c.Remaining() != 10-units {
				t.Errorf("counters: %d units, %d orders, %d left; want %d, %d, %d",
					c.DiscountedUnits(), c.Orders(), c.Remaining(), units, len(tc.wantHeld), 10-units)
			}
		})
	}
}

// granted is the grants of orders (order -> units) made during the campaign to no
// account, as the tests make them.
func granted(units map[string]int64) map[string]Grant {
	out := make(map[string]Grant, len(units))
	for id, u := range units {
		out[id] = Grant{Units: u, At: during}
	}
	return out
}

// heldUnits is the units of each grant.
func heldUnits(grants map[string]Grant) map[string]int64 {
	out := make(map[string]int64, len(grants))
	for id, g := range grants {
		out[id] = g.Units
	}
	return out
}

func TestListing(t *testing.T) {
	c := launchedPromo(t, "p_listed", promoSpec(20, []string{"Samsung", "Google"}, []string{pixel}, 10), 0)
	must(t, c.Grant("ord_a", "", 3, during))
	must(t, c.Grant("ord_b", "", 2, during))
	created := base.Add(-time.Minute)

	got := c.Listing(created, during)
	want := Listing{
		Snapshot: Snapshot{ID: "p_listed", Spec: promoSpec(20, []string{"Google", "Samsung"}, []string{pixel}, 10),
			Stage: storedLaunched},
		DiscountedUnits: 5, Orders: 2, CreatedAt: created, UpdatedAt: during,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Listing (-want +got):\n%s", diff)
	}
	if c.Holds("ord_a") != 3 {
		t.Fatal("making a listing dropped the campaign's grants")
	}
}

func TestFromListing(t *testing.T) {
	listing := func(t *testing.T) Listing {
		t.Helper()
		c := launchedPromo(t, "p_listed", promoSpec(20, []string{"Google"}, nil, 10), 0)
		must(t, c.Grant("ord_a", "", 3, during))
		must(t, c.Grant("ord_b", "", 2, during))
		return c.Listing(base, during)
	}
	type read struct {
		DiscountedUnits, Orders, Remaining int64
		Status                             Status
		Grants                             map[string]int64
	}
	tests := []struct {
		name    string
		edit    func(*Listing)
		want    read
		wantErr error
	}{
		{
			name: "from_listing_takes_the_counters_of_the_listing",
			edit: func(*Listing) {},
			want: read{DiscountedUnits: 5, Orders: 2, Remaining: 5, Status: StatusActive},
		},
		{
			// The listing is newer than any grant the reader could see.
			name: "from_listing_counters_are_the_listings_not_summed_from_grants",
			edit: func(l *Listing) { l.DiscountedUnits, l.Orders = 9, 4 },
			want: read{DiscountedUnits: 9, Orders: 4, Remaining: 1, Status: StatusActive},
		},
		{
			name: "from_listing_reads_an_exhausted_cap_as_no_units_left",
			edit: func(l *Listing) { l.DiscountedUnits, l.Orders = 10, 3 },
			want: read{DiscountedUnits: 10, Orders: 3, Remaining: 0, Status: StatusActive},
		},
		{
			name: "from_listing_carries_no_grants",
			edit: func(l *Listing) { l.Grants = granted(map[string]int64{"ord_a": 3, "ord_b": 2}) },
			want: read{DiscountedUnits: 5, Orders: 2, Remaining: 5, Status: StatusActive},
		},
		{
			name: "from_listing_keeps_the_stage",
			edit: func(l *Listing) { l.Stage = storedPaused },
			want: read{DiscountedUnits: 5, Orders: 2, Remaining: 5, Status: StatusPaused},
		},
		{
			name:    "from_listing_refuses_a_bad_stage",
			edit:    func(l *Listing) { l.Stage = "live" },
			wantErr: ErrInvalid,
		},
		{
			name:    "from_listing_refuses_an_empty_stage",
			edit:    func(l *Listing) { l.Stage = "" },
			wantErr: ErrInvalid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := listing(t)
			tc.edit(&l)
			c, err := FromListing(l)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || c != nil {
					t.Fatalf("FromListing = %v, %v; want nil, %v", c, err, tc.wantErr)
				}
				return
			}
			must(t, err)
			got := read{DiscountedUnits: c.DiscountedUnits(), Orders: c.Orders(), Remaining: c.Remaining(),
				Status: c.StatusAt(during), Grants: heldUnits(c.Snapshot().Grants)}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("FromListing (-want +got):\n%s", diff)
			}
			if c.Holds("ord_a") != 0 {
				t.Errorf("a campaign read from a listing holds %d units for ord_a, want none", c.Holds("ord_a"))
			}
		})
	}
}

// fakeLister answers LivePromos with its listings or its error, and records the
// time it was asked at.
type fakeLister struct {
	listings []Listing
	err      error
	askedAt  time.Time
}

func (f *fakeLister) LivePromos(_ context.Context, now time.Time) ([]Listing, error) {
	f.askedAt = now
	if f.err != nil {
		return nil, f.err
	}
	return f.listings, nil
}

func ids(cs []*Campaign) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestBoard(t *testing.T) {
	listed := func(t *testing.T, id string, s Spec, edit func(*Campaign)) Listing {
		t.Helper()
		c := launchedPromo(t, id, s, 0)
		if edit != nil {
			edit(c)
		}
		return c.Listing(base, base)
	}
	active := listed(t, "p_active", promoSpec(20, []string{"Google"}, nil, 0), nil)
	later := promoSpec(30, []string{"Google"}, nil, 0)
	later.StartsAt = closes.Add(-time.Hour)
	scheduled := listed(t, "p_scheduled", later, nil)
	soon := promoSpec(15, []string{"Apple"}, nil, 0)
	soon.EndsAt = during.Add(time.Hour)
	endsSoon := listed(t, "p_ends_soon", soon, nil)
	paused := listed(t, "p_paused", promoSpec(40, []string{"Google"}, nil, 0), func(c *Campaign) { must(t, c.Pause(base)) })
	unreadable := listed(t, "p_unreadable", promoSpec(50, []string{"Google"}, nil, 0), nil)
	unreadable.Stage = "launching"
	all := []Listing{active, unreadable, scheduled, endsSoon, paused}

	t.Run("new_board_is_empty", func(t *testing.T) {
		b := NewBoard()
		if got := b.Live(); len(got) != 0 {
			t.Fatalf("Live = %v, want none", ids(got))
		}
		if got := b.Active(during); len(got) != 0 {
			t.Fatalf("Active = %v, want none", ids(got))
		}
		if got := Price(b.Live(), []PriceLine{pixelLine(1)}, during, nil); got[0] != (Priced{}) {
			t.Fatalf("an empty board prices %+v", got[0])
		}
	})
	t.Run("set_skips_an_unreadable_listing", func(t *testing.T) {
		b := NewBoard()
		b.Set(all, discardLog())
		if diff := cmp.Diff([]string{"p_active", "p_scheduled", "p_ends_soon", "p_paused"}, ids(b.Live())); diff != "" {
			t.Fatalf("Live (-want +got):\n%s", diff)
		}
	})
	t.Run("set_replaces_the_previous_campaigns", func(t *testing.T) {
		b := NewBoard()
		b.Set(all, discardLog())
		b.Set([]Listing{paused}, discardLog())
		if diff := cmp.Diff([]string{"p_paused"}, ids(b.Live())); diff != "" {
			t.Fatalf("Live (-want +got):\n%s", diff)
		}
		b.Set(nil, discardLog())
		if got := b.Live(); len(got) != 0 {
			t.Fatalf("after an empty set: %v", ids(got))
		}
	})
	for _, tc := range []struct {
		name string
		at   time.Time
		want []string
	}{
		{"active_keeps_nothing_before_any_campaign_starts", base, nil},
		{"active_keeps_only_the_campaigns_active_at_now", during, []string{"p_active", "p_ends_soon"}},
		{"active_drops_a_campaign_at_its_end_without_a_refresh", during.Add(time.Hour), []string{"p_active"}},
		{"active_picks_up_a_scheduled_campaign_at_its_start_without_a_refresh", closes.Add(-time.Hour), []string{"p_active", "p_scheduled"}},
		{"active_keeps_nothing_from_the_end", closes, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBoard()
			b.Set(all, discardLog())
			if diff := cmp.Diff(tc.want, ids(b.Active(tc.at)), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("Active (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("refresh_reads_the_store_at_now", func(t *testing.T) {
		b := NewBoard()
		store := &fakeLister{listings: all}
		must(t, b.Refresh(context.Background(), store, during, discardLog()))
		if !store.askedAt.Equal(during) {
			t.Fatalf("the store was asked at %s, want %s", store.askedAt, during)
		}
		if diff := cmp.Diff([]string{"p_active", "p_scheduled", "p_ends_soon", "p_paused"}, ids(b.Live())); diff != "" {
			t.Fatalf("Live (-want +got):\n%s", diff)
		}
	})
	t.Run("a_failed_refresh_keeps_the_previous_campaigns", func(t *testing.T) {
		b := NewBoard()
		store := &fakeLister{listings: []Listing{active, endsSoon}}
		must(t, b.Refresh(context.Background(), store, during, discardLog()))
		errDown := errors.New("store down")
		store.listings, store.err = nil, errDown
		if err := b.Refresh(context.Background(), store, during, discardLog()); !errors.Is(err, errDown) {
			t.Fatalf("Refresh = %v, want %v", err, errDown)
		}
		if diff := cmp.Diff([]string{"p_active", "p_ends_soon"}, ids(b.Live())); diff != "" {
			t.Fatalf("Live after a failed refresh (-want +got):\n%s", diff)
		}
		store.listings, store.err = []Listing{paused}, nil
		must(t, b.Refresh(context.Background(), store, during, discardLog()))
		if diff := cmp.Diff([]string{"p_paused"}, ids(b.Live())); diff != "" {
			t.Fatalf("Live after a refresh that worked again (-want +got):\n%s", diff)
		}
	})
}
