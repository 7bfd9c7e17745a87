package promo

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// PriceLine is what pricing needs to know of one cart line.
type PriceLine struct {
	SKU, Brand string
	ListCents  int64
	Quantity   int64
}

// Priced is the discount of one line: PromoID is empty when no campaign covers it.
type Priced struct {
	PromoID string
	// UnitDiscountCents is the discount on one unit; DiscountCents on the line.
	UnitDiscountCents, DiscountCents int64
	// MaxUnitsPerCustomer is the campaign's limit per account (0: none). Pricing
	// does not know what an account already bought: the checkout's grant does.
	MaxUnitsPerCustomer int64
}

// Price prices lines at now: per line, the Best campaign covering it that is not
// excluded. Campaigns never stack. A campaign whose cap cannot cover every unit the
// lines would take from it covers none of them: its grant is all or nothing per
// order, so the lines are priced again without it, and the total shown is the one a
// checkout can get.
func Price(campaigns []*Campaign, lines []PriceLine, now time.Time, exclude []string) []Priced {
	excluded := slices.Clone(exclude)
	for {
		out := make([]Priced, len(lines))
		units := map[*Campaign]int64{}
		for i, l := range lines {
			c := Best(without(campaigns, excluded), l.SKU, l.Brand, now)
			if c == nil {
				continue
			}
			unit := UnitDiscount(l.ListCents, c.PercentOff)
			out[i] = Priced{PromoID: c.ID, UnitDiscountCents: unit, DiscountCents: unit * l.Quantity,
				MaxUnitsPerCustomer: c.MaxUnitsPerCustomer}
			units[c] += l.Quantity
		}
		short := false
		for c, n := range units {
			if r := c.Remaining(); r >= 0 && n > r {
				excluded, short = append(excluded, c.ID), true
			}
		}
		if !short {
			return out
		}
	}
}

func without(campaigns []*Campaign, ids []string) []*Campaign {
	if len(ids) == 0 {
		return campaigns
	}
	return slices.DeleteFunc(slices.Clone(campaigns), func(c *Campaign) bool { return slices.Contains(ids, c.ID) })
}

// Lister reads the campaigns that may price something: launched and not yet past
// their end.
type Lister interface {
	LivePromos(ctx context.Context, now time.Time) ([]Listing, error)
}

// Board is a process's view of the live campaigns, refreshed from the store every
// interval, so that every edge and member prices alike within one interval of a
// launch, pause, end or exhausted cap. The campaigns' statuses follow the clock
// between refreshes: one that ends stops pricing at once.
type Board struct {
	campaigns atomic.Pointer[[]*Campaign]
}

// NewBoard returns an empty board.
func NewBoard() *Board {
	b := &Board{}
	b.campaigns.Store(&[]*Campaign{})
	return b
}

// Live returns the campaigns as of the last refresh. They are read-only. A nil
// board has none.
func (b *Board) Live() []*Campaign {
	if b == nil {
		return nil
	}
	return *b.campaigns.Load()
}

// Active returns the campaigns active at now, with their ids, for listing.
func (b *Board) Active(now time.Time) []*Campaign {
	var out []*Campaign
	for _, c := range b.Live() {
		if c.StatusAt(now) == StatusActive {
			out = append(out, c)
		}
	}
	return out
}

// Set replaces the board's campaigns; a listing that cannot be read is skipped.
func (b *Board) Set(ls []Listing, log *slog.Logger) {
	cs := make([]*Campaign, 0, len(ls))
	for _, l := range ls {
		c, err := FromListing(l)
		if err != nil {
			log.Error("unreadable campaign listing; it prices nothing", "promo", l.ID, "err", err)
			continue
		}
		cs = append(cs, c)
	}
	b.campaigns.Store(&cs)
}

// Refresh reads the live campaigns once.
func (b *Board) Refresh(ctx context.Context, store Lister, now time.Time, log *slog.Logger) error {
	ls, err := store.LivePromos(ctx, now)
	if err != nil {
		return err
	}
	b.Set(ls, log)
	return nil
}

// Run refreshes the board every interval until ctx ends. A failed refresh keeps the
// last view (the clock still ends campaigns on time) and is logged.
func (b *Board) Run(ctx context.Context, store Lister, interval time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		callCtx, cancel := context.WithTimeout(ctx, interval*5)
		err := b.Refresh(callCtx, store, now(), log)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("refreshing live campaigns failed; pricing from the last view", "err", err)
		case err == nil && failing:
			log.Info("live campaigns refreshed again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ListQuery is one page of the campaign listing, newest first.
type ListQuery struct {
	// Status, when set, keeps the campaigns of that status at Now.
	Status Status
	Now    time.Time
	Limit  int
	// After continues a previous page; nil starts at the newest.
	After *ListCursor
}

// ListCursor is where a page of the listing ends.
type ListCursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}
