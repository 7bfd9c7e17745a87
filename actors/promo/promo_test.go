package promo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	starts = t0.Add(time.Hour)
	ends   = t0.Add(3 * time.Hour)
)

func spec() Spec {
	return Spec{Name: "Launch week", PercentOff: 20, Brands: []string{"Google"}, SKUs: []string{"apple-iphone-15-128-black"},
		StartsAt: starts, EndsAt: ends}
}

func newCampaign(t *testing.T, s Spec) *Campaign {
	t.Helper()
	c, err := New("promo_1", s, t0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Spec)
		wantOK bool
	}{
		{"valid", func(*Spec) {}, true},
		{"brands_only", func(s *Spec) { s.SKUs = nil }, true},
		{"skus_only", func(s *Spec) { s.Brands = nil }, true},
		{"no_brand_or_sku_refused", func(s *Spec) { s.Brands, s.SKUs = nil, nil }, false},
		{"empty_name_refused", func(s *Spec) { s.Name = "  " }, false},
		{"name_of_100_runes", func(s *Spec) { s.Name = strings.Repeat("é", 100) }, true},
		{"name_of_101_runes_refused", func(s *Spec) { s.Name = strings.Repeat("é", 101) }, false},
		{"percent_1", func(s *Spec) { s.PercentOff = 1 }, true},
		{"percent_90", func(s *Spec) { s.PercentOff = 90 }, true},
		{"percent_0_refused", func(s *Spec) { s.PercentOff = 0 }, false},
		{"percent_91_refused", func(s *Spec) { s.PercentOff = 91 }, false},
		{"end_before_start_refused", func(s *Spec) { s.EndsAt = s.StartsAt.Add(-time.Second) }, false},
		{"end_equal_start_refused", func(s *Spec) { s.EndsAt = s.StartsAt }, false},
		{"end_in_the_past_refused", func(s *Spec) { s.StartsAt, s.EndsAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour) }, false},
		{"end_exactly_now_refused", func(s *Spec) { s.StartsAt, s.EndsAt = t0.Add(-time.Hour), t0 }, false},
		{"started_already_but_not_over", func(s *Spec) { s.StartsAt = t0.Add(-time.Hour) }, true},
		{"missing_times_refused", func(s *Spec) { s.StartsAt = time.Time{} }, false},
		{"negative_cap_refused", func(s *Spec) { s.MaxDiscountedUnits = -1 }, false},
		{"no_limit_per_customer", func(s *Spec) { s.MaxUnitsPerCustomer = 0 }, true},
		{"limit_per_customer_1", func(s *Spec) { s.MaxUnitsPerCustomer = 1 }, true},
		{"limit_per_customer_100", func(s *Spec) { s.MaxUnitsPerCustomer = 100 }, true},
		{"limit_per_customer_101_refused", func(s *Spec) { s.MaxUnitsPerCustomer = 101 }, false},
		{"negative_limit_per_customer_refused", func(s *Spec) { s.MaxUnitsPerCustomer = -1 }, false},
		{"blank_sku_refused", func(s *Spec) { s.SKUs = []string{" "} }, false},
		{"subject_too_long_refused", func(s *Spec) { s.EmailSubject = strings.Repeat("x", MaxSubjectLen+1) }, false},
		{"line_break_in_subject_refused", func(s *Spec) { s.EmailSubject = "Sale\r\nBcc: all@example.com" }, false},
		{"newline_in_subject_refused", func(s *Spec) { s.EmailSubject = "Sale\nnow" }, false},
		{"tab_in_subject_refused", func(s *Spec) { s.EmailSubject = "Sale\tnow" }, false},
		{"line_separator_in_subject_refused", func(s *Spec) { s.EmailSubject = "Sale\u2028now" }, false},
		{"nul_in_name_refused", func(s *Spec) { s.Name = "Sale\x00" }, false},
		{"c1_control_in_name_refused", func(s *Spec) { s.Name = "Sale\u0085" }, false},
		{"line_break_in_name_refused", func(s *Spec) { s.Name = "Pixel\nweek" }, false},
		{"control_in_brand_refused", func(s *Spec) { s.Brands = []string{"Goo\x1bgle"} }, false},
		{"unicode_letters_in_subject", func(s *Spec) { s.EmailSubject = "Soldes d'été — 20 % 📱" }, true},
		{"line_breaks_and_tabs_in_body", func(s *Spec) { s.EmailBody = "Hello,\r\n\tsee our sale.\n" }, true},
		{"escape_in_body_refused", func(s *Spec) { s.EmailBody = "Hello \x1b[31m" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			tc.edit(&s)
			err := s.Validate(t0)
			if (err == nil) != tc.wantOK {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.wantOK)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestNewNormalizes(t *testing.T) {
	s := spec()
	s.Name = "  Launch week "
	s.Brands = []string{"Samsung", "Google", "Samsung"}
	s.StartsAt = starts.In(time.FixedZone("CET", 3600))
	c := newCampaign(t, s)
	if c.Name != "Launch week" || strings.Join(c.Brands, ",") != "Google,Samsung" || c.StartsAt.Location() != time.UTC {
		t.Fatalf("stored %q %v %v", c.Name, c.Brands, c.StartsAt)
	}
	if c.StatusAt(t0) != StatusDraft {
		t.Fatalf("a new campaign is %s, want draft", c.StatusAt(t0))
	}
}

func TestStatusWindow(t *testing.T) {
	c := newCampaign(t, spec())
	if err := c.Launch(t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want Status
	}{
		{t0, StatusScheduled},
		{starts.Add(-time.Nanosecond), StatusScheduled},
		{starts, StatusActive}, // starts_at is inside
		{ends.Add(-time.Nanosecond), StatusActive},
		{ends, StatusEnded}, // ends_at is outside
		{ends.Add(time.Hour), StatusEnded},
	} {
		if got := c.StatusAt(tc.at); got != tc.want {
			t.Errorf("at %s: %s, want %s", tc.at.Format(time.TimeOnly), got, tc.want)
		}
	}
}

// TestTransitions tries every command from every status.
func TestTransitions(t *testing.T) {
	active := starts.Add(time.Minute)
	// reach returns a campaign that shows status at the time it returns.
	reach := func(t *testing.T, status Status) (*Campaign, time.Time) {
		t.Helper()
		c := newCampaign(t, spec())
		switch status {
		case StatusDraft:
			return c, t0
		case StatusScheduled:
			must(t, c.Launch(t0))
			return c, t0
		case StatusActive:
			must(t, c.Launch(t0))
			return c, active
		case StatusPaused:
			must(t, c.Launch(t0))
			must(t, c.Pause(active))
			return c, active
		case StatusEnded:
			c.End()
			return c, t0
		}
		t.Fatalf("no way to %s", status)
		return nil, time.Time{}
	}
	tests := []struct {
		from Status
		cmd  string
		want Status // "" when refused
	}{
		{StatusDraft, "launch", StatusScheduled},
		{StatusDraft, "pause", ""},
		{StatusDraft, "end", StatusEnded},
		{StatusScheduled, "launch", StatusScheduled}, // a retry: nothing changes
		{StatusScheduled, "pause", StatusPaused},
		{StatusScheduled, "end", StatusEnded},
		{StatusActive, "launch", StatusActive},
		{StatusActive, "pause", StatusPaused},
		{StatusActive, "end", StatusEnded},
		{StatusPaused, "launch", StatusActive},
		{StatusPaused, "pause", StatusPaused},
		{StatusPaused, "end", StatusEnded},
		{StatusEnded, "launch", ""},
		{StatusEnded, "pause", ""},
		{StatusEnded, "end", StatusEnded},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_%s", tc.from, tc.cmd), func(t *testing.T) {
			c, at := reach(t, tc.from)
			if got := c.StatusAt(at); got != tc.from {
				t.Fatalf("set-up reached %s, want %s", got, tc.from)
			}
			var err error
			switch tc.cmd {
			case "launch":
				err = c.Launch(at)
			case "pause":
				err = c.Pause(at)
			case "end":
				c.End()
			}
			if tc.want == "" {
				if !errors.Is(err, ErrTransition) {
					t.Fatalf("%s from %s: %v, want ErrTransition", tc.cmd, tc.from, err)
				}
				if got := c.StatusAt(at); got != tc.from {
					t.Fatalf("a refused %s moved %s to %s", tc.cmd, tc.from, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s from %s: %v", tc.cmd, tc.from, err)
			}
			if got := c.StatusAt(at); got != tc.want {
				t.Fatalf("%s from %s: %s, want %s", tc.cmd, tc.from, got, tc.want)
			}
		})
	}
	t.Run("a_paused_campaign_past_its_end_reads_ended", func(t *testing.T) {
		c, _ := reach(t, StatusPaused)
		if got := c.StatusAt(ends); got != StatusEnded {
			t.Fatalf("paused past ends_at: %s", got)
		}
		if err := c.Launch(ends); !errors.Is(err, ErrTransition) {
			t.Fatalf("launching a campaign past its end: %v", err)
		}
	})
	t.Run("only_a_draft_is_edited", func(t *testing.T) {
		c, at := reach(t, StatusDraft)
		s := spec()
		s.PercentOff = 30
		must(t, c.Edit(s, at))
		if c.PercentOff != 30 {
			t.Fatal("the edit did not apply")
		}
		s.PercentOff = 0
		if err := c.Edit(s, at); !errors.Is(err, ErrInvalid) || c.PercentOff != 30 {
			t.Fatalf("an invalid edit: %v, percent now %d", err, c.PercentOff)
		}
		c, at = reach(t, StatusScheduled)
		if err := c.Edit(spec(), at); !errors.Is(err, ErrNotDraft) {
			t.Fatalf("editing a launched campaign: %v", err)
		}
	})
}

func TestGrantsAndTheCap(t *testing.T) {
	active := starts.Add(time.Minute)
	s := spec()
	s.MaxDiscountedUnits = 5
	c := newCampaign(t, s)
	if err := c.Grant("ord_a", "", 1, active); !errors.Is(err, ErrNotActive) {
		t.Fatalf("grant on a draft: %v", err)
	}
	must(t, c.Launch(t0))
	if err := c.Grant("ord_a", "", 1, t0); !errors.Is(err, ErrNotActive) {
		t.Fatalf("grant while scheduled: %v", err)
	}
	must(t, c.Grant("ord_a", "", 3, active))
	must(t, c.Grant("ord_a", "", 3, active)) // a retry
	if c.DiscountedUnits() != 3 || c.Orders() != 1 || c.Remaining() != 2 {
		t.Fatalf("after a grant and its retry: %d units, %d orders, %d left", c.DiscountedUnits(), c.Orders(), c.Remaining())
	}
	if err := c.Grant("ord_a", "", 2, active); !errors.Is(err, ErrGrantChange) {
		t.Fatalf("the same order with other units: %v", err)
	}
	if err := c.Grant("ord_b", "", 3, active); !errors.Is(err, ErrCapReached) || c.DiscountedUnits() != 3 {
		t.Fatalf("over the cap: %v, %d units", err, c.DiscountedUnits())
	}
	must(t, c.Grant("ord_b", "", 2, active)) // exactly to the cap
	if c.Remaining() != 0 {
		t.Fatalf("%d left at the cap", c.Remaining())
	}
	if err := c.Grant("ord_c", "", 1, active); !errors.Is(err, ErrCapReached) {
		t.Fatalf("at the cap: %v", err)
	}
	must(t, c.Return("ord_a"))
	must(t, c.Return("ord_a")) // a retry
	must(t, c.Return("ord_never"))
	if c.DiscountedUnits() != 2 || c.Orders() != 1 || c.Remaining() != 3 {
		t.Fatalf("after returning ord_a: %d units, %d orders, %d left", c.DiscountedUnits(), c.Orders(), c.Remaining())
	}
	// A granted order keeps its grant across a pause: it was placed at the discount.
	must(t, c.Pause(active))
	must(t, c.Grant("ord_b", "", 2, active))
	if err := c.Grant("ord_d", "", 1, active); !errors.Is(err, ErrNotActive) {
		t.Fatalf("a new grant while paused: %v", err)
	}
	if err := c.Grant("ord_e", "", 0, active); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero units: %v", err)
	}
	uncapped := newCampaign(t, spec())
	if uncapped.Remaining() != -1 {
		t.Fatalf("no cap: remaining %d, want -1", uncapped.Remaining())
	}
}

// TestUnitDiscountAddsUp: for every percentage and prices with odd cents, line totals
// add up to the subtotal less the discount, the discount never exceeds the price,
// and the rounding is half up.
func TestUnitDiscountAddsUp(t *testing.T) {
	for _, tc := range []struct {
		list    int64
		percent int
		want    int64
	}{
		{79900, 20, 15980},
		{999, 15, 150},     // 149.85 -> 150
		{101, 50, 51},      // 50.5 -> 51 (half up)
		{1, 49, 0},         // 0.49 -> 0
		{1, 50, 1},         // 0.5 -> 1
		{12345, 90, 11111}, // 11110.5 -> 11111
		{0, 20, 0},
	} {
		if got := UnitDiscount(tc.list, tc.percent); got != tc.want {
			t.Errorf("UnitDiscount(%d, %d) = %d, want %d", tc.list, tc.percent, got, tc.want)
		}
	}
	prices := []int64{1, 3, 99, 101, 999, 12345, 79999, 149999}
	for percent := MinPercentOff; percent <= MaxPercentOff; percent++ {
		var subtotal, discount, total int64
		for i, p := range prices {
			qty := int64(i%5 + 1)
			d := UnitDiscount(p, percent)
			if d < 0 || d > p {
				t.Fatalf("%d%% of %d: discount %d", percent, p, d)
			}
			subtotal += p * qty
			discount += d * qty
			total += (p - d) * qty
		}
		if total != subtotal-discount {
			t.Fatalf("%d%%: lines total %d, subtotal %d less discount %d is %d", percent, total, subtotal, discount, subtotal-discount)
		}
	}
}

func TestBestWins(t *testing.T) {
	active := starts.Add(time.Minute)
	mk := func(id string, percent int, brands, skus []string, endsAt time.Time, launched bool) *Campaign {
		s := spec()
		s.PercentOff, s.Brands, s.SKUs, s.EndsAt = percent, brands, skus, endsAt
		c, err := New(id, s, t0)
		if err != nil {
			t.Fatal(err)
		}
		if launched {
			must(t, c.Launch(t0))
		}
		return c
	}
	const sku, brand = "google-pixel-8-128-obsidian", "Google"
	byBrand10 := mk("p_brand10", 10, []string{brand}, nil, ends, true)
	bySKU25 := mk("p_sku25", 25, nil, []string{sku}, ends, true)
	draft50 := mk("p_draft50", 50, nil, []string{sku}, ends, false)
	other60 := mk("p_other60", 60, []string{"Apple"}, nil, ends, true)
	soonTie25 := mk("p_tie25_soon", 25, []string{brand}, nil, ends.Add(-time.Hour), true)
	tests := []struct {
		name      string
		campaigns []*Campaign
		at        time.Time
		want      string
	}{
		{"none", nil, active, ""},
		{"brand_campaign_covers_the_sku", []*Campaign{byBrand10}, active, "p_brand10"},
		{"higher_percent_wins_over_brand", []*Campaign{byBrand10, bySKU25}, active, "p_sku25"},
		{"draft_does_not_count", []*Campaign{byBrand10, draft50}, active, "p_brand10"},
		{"other_brand_does_not_cover", []*Campaign{other60}, active, ""},
		{"not_before_starts_at", []*Campaign{bySKU25}, t0, ""},
		{"a_tie_goes_to_the_earliest_end", []*Campaign{bySKU25, soonTie25}, active, "p_tie25_soon"},
		{"an_ended_one_drops_out", []*Campaign{bySKU25, soonTie25}, ends.Add(-time.Hour), "p_sku25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Best(tc.campaigns, sku, brand, tc.at)
			if (got == nil && tc.want != "") || (got != nil && got.ID != tc.want) {
				t.Fatalf("Best = %v, want %q", got, tc.want)
			}
		})
	}
	t.Run("a_capped_out_campaign_drops_out", func(t *testing.T) {
		s := spec()
		s.PercentOff, s.MaxDiscountedUnits = 80, 1
		capped, err := New("p_capped80", s, t0)
		must(t, err)
		must(t, capped.Launch(t0))
		if got := Best([]*Campaign{capped, byBrand10}, sku, brand, active); got != capped {
			t.Fatalf("with units left: %v", got)
		}
		must(t, capped.Grant("ord_x", "", 1, active))
		if got := Best([]*Campaign{capped, byBrand10}, sku, brand, active); got != byBrand10 {
			t.Fatalf("capped out: %v, want the brand campaign", got)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	active := starts.Add(time.Minute)
	s := spec()
	s.MaxDiscountedUnits = 10
	c := newCampaign(t, s)
	must(t, c.Launch(t0))
	must(t, c.Grant("ord_a", "", 3, active))
	must(t, c.Grant("ord_b", "", 2, active))
	must(t, c.Pause(active))

	back, err := FromSnapshot(c.Snapshot())
	must(t, err)
	if back.StatusAt(active) != StatusPaused || back.DiscountedUnits() != 5 || back.Orders() != 2 || back.Remaining() != 5 {
		t.Fatalf("restored: %s, %d units, %d orders, %d left", back.StatusAt(active), back.DiscountedUnits(), back.Orders(), back.Remaining())
	}
	must(t, back.Launch(active))
	must(t, back.Grant("ord_a", "", 3, active)) // still a retry after the reload
	if back.DiscountedUnits() != 5 {
		t.Fatalf("a retried grant counted twice after a reload: %d", back.DiscountedUnits())
	}
	// A launched campaign whose end passed while the shop was down reads ended.
	if back.StatusAt(ends.Add(time.Minute)) != StatusEnded {
		t.Fatal("a restored campaign past its end is not ended")
	}
	// The snapshot is a copy: changing it does not change the campaign.
	snap := back.Snapshot()
	snap.Grants["ord_z"] = Grant{Units: 1}
	snap.SKUs[0] = "changed"
	if back.Orders() != 2 || back.SKUs[0] == "changed" {
		t.Fatal("the snapshot shares state with the campaign")
	}
	for _, bad := range []Snapshot{
		{ID: "x", Spec: spec(), Stage: "launching"},
		{ID: "x", Spec: spec(), Stage: "draft", Grants: map[string]Grant{"ord": {}}},
		// A part of the ledger without totals cannot tell the counters.
		{ID: "x", Spec: spec(), Stage: "draft", GrantsFrom: t0},
		{ID: "x", Spec: spec(), Stage: "draft", Totals: &Totals{DiscountedUnits: 1, Orders: 1},
			Grants: map[string]Grant{"ord": {Units: 2}}, GrantsFrom: t0},
	} {
		if _, err := FromSnapshot(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("FromSnapshot(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

// TestLimitPerCustomer: a campaign with max_units_per_customer counts each
// account's units across its orders: a grant that would go over is refused with
// the units still left to the account, a retry counts once, a return gives the
// units back to the account, and an account whose units memory does not hold
// must be recalled first.
func TestLimitPerCustomer(t *testing.T) {
	active := starts.Add(time.Minute)
	type grant struct {
		order, account string
		units          int64
	}
	type want struct {
		err       error
		remaining int64 // of a *LimitError
	}
	tests := []struct {
		name   string
		limit  int64
		cap    int64
		recall map[string]int64 // accounts' units read from the store before the steps
		// noRecall leaves the accounts unread (the test recalls every other
		// account at 0 units, as the grain does for one the store has no row of)
		noRecall  bool
		steps     []grant // units 0: return the order's grant
		wants     []want
		wantUnits map[string]int64 // each account's units after the steps
	}{
		{
			name: "orders_of_one_account_add_up_to_the_limit_and_no_further", limit: 3,
			steps:     []grant{{"o1", "ann", 2}, {"o2", "ann", 2}, {"o2", "ann", 1}, {"o3", "ann", 1}},
			wants:     []want{{}, {err: ErrLimitReached, remaining: 1}, {}, {err: ErrLimitReached, remaining: 0}},
			wantUnits: map[string]int64{"ann": 3},
		},
		{
			name: "accounts_have_allowances_of_their_own", limit: 2,
			steps:     []grant{{"o1", "ann", 2}, {"o2", "bob", 2}, {"o3", "bob", 1}},
			wants:     []want{{}, {}, {err: ErrLimitReached, remaining: 0}},
			wantUnits: map[string]int64{"ann": 2, "bob": 2},
		},
		{
			name: "one_order_over_the_limit_alone_is_refused", limit: 2,
			steps:     []grant{{"o1", "ann", 3}},
			wants:     []want{{err: ErrLimitReached, remaining: 2}},
			wantUnits: map[string]int64{"ann": 0},
		},
		{
			name: "a_retried_grant_counts_once", limit: 2,
			steps:     []grant{{"o1", "ann", 2}, {"o1", "ann", 2}},
			wants:     []want{{}, {}},
			wantUnits: map[string]int64{"ann": 2},
		},
		{
			name: "a_return_gives_the_units_back_to_the_account", limit: 2,
			steps:     []grant{{"o1", "ann", 2}, {"o1", "", 0}, {"o1", "", 0}, {"o2", "ann", 2}},
			wants:     []want{{}, {}, {}, {}},
			wantUnits: map[string]int64{"ann": 2},
		},
		{
			name: "units_read_from_the_store_count", limit: 3, recall: map[string]int64{"ann": 2},
			steps:     []grant{{"o1", "ann", 2}, {"o1", "ann", 1}},
			wants:     []want{{err: ErrLimitReached, remaining: 1}, {}},
			wantUnits: map[string]int64{"ann": 3},
		},
		{
			name: "an_account_not_recalled_is_a_bug_not_a_free_allowance", limit: 3, noRecall: true,
			steps: []grant{{"o1", "ann", 1}},
			wants: []want{{err: ErrNotLoaded}},
		},
		{
			name: "an_order_without_an_account_is_refused", limit: 3,
			steps: []grant{{"o1", "", 1}},
			wants: []want{{err: ErrInvalid}},
		},
		{
			// Past the cap the campaign gives no discount at all: the cart prices
			// without it, whatever the account's allowance.
			name: "the_cap_refuses_before_the_limit", limit: 1, cap: 2,
			steps:     []grant{{"o1", "ann", 1}, {"o2", "bob", 3}},
			wants:     []want{{}, {err: ErrCapReached}},
			wantUnits: map[string]int64{"ann": 1, "bob": 0},
		},
		{
			name: "no_limit_counts_no_account", limit: 0,
			steps:     []grant{{"o1", "ann", 50}, {"o2", "", 50}},
			wants:     []want{{}, {}},
			wantUnits: map[string]int64{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			s.MaxUnitsPerCustomer, s.MaxDiscountedUnits = tc.limit, tc.cap
			c := newCampaign(t, s)
			must(t, c.Launch(t0))
			known := map[string]bool{}
			for account, units := range tc.recall {
				c.RecallCustomer(account, units)
				known[account] = true
			}
			for i, g := range tc.steps {
				if g.account != "" && !known[g.account] && !tc.noRecall {
					if c.KnowsCustomer(g.account) != (tc.limit == 0) {
						t.Fatalf("step %d: KnowsCustomer(%s) = %v with limit %d", i, g.account, c.KnowsCustomer(g.account), tc.limit)
					}
					c.RecallCustomer(g.account, 0)
					known[g.account] = true
				}
				var err error
				if g.units == 0 {
					err = c.Return(g.order)
				} else {
					err = c.Grant(g.order, g.account, g.units, active)
				}
				w := tc.wants[i]
				if !errors.Is(err, w.err) || (w.err == nil) != (err == nil) {
					t.Fatalf("step %d %+v: err = %v, want %v", i, g, err, w.err)
				}
				var limit *LimitError
				if errors.As(err, &limit) && limit.Remaining != w.remaining {
					t.Fatalf("step %d %+v: %d remaining, want %d", i, g, limit.Remaining, w.remaining)
				}
			}
			for account, want := range tc.wantUnits {
				if got := c.CustomerUnits(account); got != want {
					t.Errorf("%s holds %d units, want %d", account, got, want)
				}
			}
			// Every account's units changed reach the next write, as they are now.
			change, _ := c.TakeChange()
			for account, units := range change.Customers {
				if units != c.CustomerUnits(account) {
					t.Errorf("the write carries %s at %d units, memory says %d", account, units, c.CustomerUnits(account))
				}
			}
			if tc.limit == 0 && len(change.Customers) != 0 {
				t.Errorf("a campaign without a limit writes accounts' units: %v", change.Customers)
			}
		})
	}
}

// TestGrantLedgerWindow: a campaign keeps in memory the grants of the last
// LedgerWindow; an order created after the window began is known to hold no
// grant without the store, an older one must be recalled; Compact drops only
// what is durable (no change unwritten), and the counters keep every grant.
func TestGrantLedgerWindow(t *testing.T) {
	s := spec()
	s.EndsAt = starts.Add(24 * time.Hour)
	s.MaxUnitsPerCustomer = 5
	c := newCampaign(t, s)
	must(t, c.Launch(t0))
	early := starts.Add(time.Minute)
	c.RecallCustomer("ann", 0)
	must(t, c.Grant("o-early", "ann", 2, early))
	must(t, c.Grant("o-returned", "ann", 1, early))
	c.TakeChange() // written
	must(t, c.Return("o-returned"))
	late := early.Add(LedgerWindow + 2*time.Minute)
	must(t, c.Grant("o-unwritten", "ann", 1, early)) // granted early, not yet written

	// A fresh campaign knows every order without the store: it holds the whole ledger.
	if !c.KnowsGrant("o-any", time.Time{}) {
		t.Fatal("a campaign with its whole ledger in memory does not know an order")
	}
	c.Compact(late)
	if c.Holds("o-early") != 0 || c.KnowsGrant("o-early", early) {
		t.Fatal("a durable grant older than the window is still in memory")
	}
	if c.Holds("o-unwritten") != 1 {
		t.Fatal("Compact dropped a grant no write has taken")
	}
	if !c.KnowsGrant("o-returned", early) {
		t.Fatal("Compact dropped a return no write has taken: a lookup would find the grant again")
	}
	if c.DiscountedUnits() != 3 || c.Orders() != 2 {
		t.Fatalf("counters after Compact: %d units in %d orders, want 3 in 2", c.DiscountedUnits(), c.Orders())
	}
	if !c.KnowsGrant("o-new", late) || c.KnowsGrant("o-new", time.Time{}) {
		t.Fatal("an order created within the window must be known, one of unknown age not")
	}
	if c.KnowsGrant("o-new", late.Add(-LedgerWindow)) {
		t.Fatal("an order created right at the window's start must be looked up (members' clocks differ)")
	}
	// The store's answer for o-early makes its retry and its return exact.
	c.RecallGrant("o-early", Grant{Units: 2, AccountID: "ann", At: early}, true)
	must(t, c.Grant("o-early", "ann", 2, late)) // a retry, counted once
	if c.DiscountedUnits() != 3 || c.CustomerUnits("ann") != 3 {
		t.Fatalf("a retried grant of a recalled order counted again: %d units, ann %d", c.DiscountedUnits(), c.CustomerUnits("ann"))
	}
	must(t, c.Return("o-early"))
	must(t, c.Return("o-early"))
	if c.DiscountedUnits() != 1 || c.Orders() != 1 || c.CustomerUnits("ann") != 1 {
		t.Fatalf("after returning o-early twice: %d units in %d orders, ann %d; want 1, 1, 1", c.DiscountedUnits(), c.Orders(), c.CustomerUnits("ann"))
	}
	change, _ := c.TakeChange()
	if !slices.Contains(change.Returned, "o-early") || change.Customers["ann"] != 1 {
		t.Fatalf("the write carries %+v; want o-early returned and ann at 1", change)
	}
	// Not found in the store: known to hold none.
	c.RecallGrant("o-never", Grant{}, false)
	if !c.KnowsGrant("o-never", time.Time{}) || c.Holds("o-never") != 0 {
		t.Fatal("an order the store has no grant for is not known to hold none")
	}
	// The snapshot keeps the window and the totals; it rebuilds the same campaign.
	back, err := FromSnapshot(c.Snapshot())
	must(t, err)
	if back.DiscountedUnits() != 1 || back.Orders() != 1 || back.KnowsGrant("o-early", early) {
		t.Fatalf("restored: %d units in %d orders; knows o-early %v", back.DiscountedUnits(), back.Orders(), back.KnowsGrant("o-early", early))
	}
}

// TestCustomersInMemoryAreBounded: past maxCustomersInMemory accounts, Compact
// drops the durable ones and keeps those with units no write has taken.
func TestCustomersInMemoryAreBounded(t *testing.T) {
	s := spec()
	s.MaxUnitsPerCustomer = 1
	c := newCampaign(t, s)
	must(t, c.Launch(t0))
	active := starts.Add(time.Minute)
	for i := range maxCustomersInMemory + 1 {
		account := fmt.Sprintf("acc-%d", i)
		c.RecallCustomer(account, 0)
		must(t, c.Grant("o-"+account, account, 1, active))
	}
	c.TakeChange()
	c.RecallCustomer("late", 0)
	must(t, c.Grant("o-late", "late", 1, active))
	c.Compact(active)
	if c.KnowsCustomer("acc-0") {
		t.Fatal("a durable account is kept past the bound")
	}
	if !c.KnowsCustomer("late") || c.CustomerUnits("late") != 1 {
		t.Fatal("Compact dropped an account whose units no write has taken")
	}
}
