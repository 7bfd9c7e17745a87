// Package promo is a marketing campaign: a percentage off chosen brands and SKUs for
// a window of time, with an optional cap on the units sold at its discount. It is
// pure domain code; the campaign grain (grain.go) adapts it to protoactor, and is
// the single writer of the cap's counter, as the inventory grain is of stock.
//
// A campaign's status depends on time: a launched campaign is "scheduled" before
// StartsAt, "active" from it, and "ended" from EndsAt on (end exclusive), without
// any write. So a read never shows an expired campaign as active.
//
// Every command that moves units is idempotent for its order id, because grain
// calls may be delivered twice.
package promo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors of the promo domain.
var (
	ErrInvalid     = errors.New("promo: invalid campaign")
	ErrTransition  = errors.New("promo: status change not allowed")
	ErrNotDraft    = errors.New("promo: only a draft can be edited")
	ErrNotActive   = errors.New("promo: campaign is not active")
	ErrCapReached  = errors.New("promo: no discounted units left")
	ErrGrantChange = errors.New("promo: order already holds a different number of discounted units")
)

// Status is what a campaign shows.
type Status string

// The statuses of API.md.
const (
	StatusDraft     Status = "draft"
	StatusScheduled Status = "scheduled"
	StatusActive    Status = "active"
	StatusPaused    Status = "paused"
	StatusEnded     Status = "ended"
)

// stage is what a campaign stores; its Status follows from it and the clock.
type stage int

const (
	stageDraft stage = iota
	stageLaunched
	stagePaused
	stageEnded
)

// Limits of a campaign's fields.
const (
	MaxNameLen      = 100
	MinPercentOff   = 1
	MaxPercentOff   = 90
	MaxTargets      = 500 // brands and SKUs together
	MaxSubjectLen   = 200
	MaxEmailBodyLen = 20_000
)

// Spec is what marketing writes: the fields of a create or an edit.
type Spec struct {
	Name       string
	PercentOff int
	Brands     []string
	SKUs       []string
	StartsAt   time.Time
	EndsAt     time.Time
	// MaxDiscountedUnits caps the units sold at the discount; 0 is no cap.
	MaxDiscountedUnits int64
	EmailSubject       string
	EmailBody          string
}

// Validate checks spec at now: every rule but whether its brands and SKUs exist,
// which the caller checks against the catalog.
func (s Spec) Validate(now time.Time) error {
	var problems []string
	if n := utf8.RuneCountInString(strings.TrimSpace(s.Name)); n < 1 || n > MaxNameLen {
		problems = append(problems, fmt.Sprintf("name must have 1 to %d characters", MaxNameLen))
	}
	if s.PercentOff < MinPercentOff || s.PercentOff > MaxPercentOff {
		problems = append(problems, fmt.Sprintf("percent_off must be an integer from %d to %d", MinPercentOff, MaxPercentOff))
	}
	switch n := len(s.Brands) + len(s.SKUs); {
	case n == 0:
		problems = append(problems, "at least one brand or sku is required")
	case n > MaxTargets:
		problems = append(problems, fmt.Sprintf("at most %d brands and skus together", MaxTargets))
	}
	for _, t := range slices.Concat(s.Brands, s.SKUs) {
		if strings.TrimSpace(t) == "" || len(t) > 100 || strings.ContainsFunc(t, breaksALine) {
			problems = append(problems, "brands and skus must be 1 to 100 characters, none of them a control character")
			break
		}
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		problems = append(problems, "starts_at and ends_at are required")
	} else {
		if !s.EndsAt.After(s.StartsAt) {
			problems = append(problems, "ends_at must be after starts_at")
		}
		if !s.EndsAt.After(now) {
			problems = append(problems, "ends_at must be in the future")
		}
	}
	if s.MaxDiscountedUnits < 0 {
		problems = append(problems, "max_discounted_units must be at least 1")
	}
	if utf8.RuneCountInString(s.EmailSubject) > MaxSubjectLen {
		problems = append(problems, fmt.Sprintf("email_subject must have at most %d characters", MaxSubjectLen))
	}
	if utf8.RuneCountInString(s.EmailBody) > MaxEmailBodyLen {
		problems = append(problems, fmt.Sprintf("email_body must have at most %d characters", MaxEmailBodyLen))
	}
	// The name and the subject end up in one-line places (a mail's Subject
	// header, a page's title): a line break there would make every mail of the
	// campaign fail to send, or forge a header. The body may break lines.
	for _, f := range []struct{ name, value string }{{"name", s.Name}, {"email_subject", s.EmailSubject}} {
		if strings.ContainsFunc(f.value, breaksALine) {
			problems = append(problems, f.name+" must not contain control characters or line breaks")
		}
	}
	if strings.ContainsFunc(s.EmailBody, func(r rune) bool { return breaksALine(r) && r != '\n' && r != '\r' && r != '\t' }) {
		problems = append(problems, "email_body must not contain control characters other than line breaks and tabs")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// breaksALine reports whether r is a control character (C0, DEL, C1) or a Unicode
// line or paragraph separator.
func breaksALine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// normalized is spec as stored: names trimmed, targets sorted without repeats,
// times in UTC.
func (s Spec) normalized() Spec {
	s.Name = strings.TrimSpace(s.Name)
	s.Brands = sortedUnique(s.Brands)
	s.SKUs = sortedUnique(s.SKUs)
	s.StartsAt, s.EndsAt = s.StartsAt.UTC(), s.EndsAt.UTC()
	return s
}

func sortedUnique(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, strings.TrimSpace(x))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Campaign is one campaign and its counters.
type Campaign struct {
	ID string
	Spec
	stage stage
	// grants are the discounted units each order holds (order id -> units).
	grants map[string]int64
	// discountedUnits is the sum of grants.
	discountedUnits int64
	orders          int64
	// activated is set once the campaign has been seen active; activatedNow until
	// the write that carries the event takes it.
	activated, activatedNow bool
	// unwritten are the grant ledger's changes no write has taken yet.
	unwritten GrantsChange
}

// GrantsChange is what changed in a campaign's grant ledger: grants added (order
// -> units) and orders whose grant was returned. The ledger is stored beside the
// snapshot, one row per order, so that a write carries only its own changes.
type GrantsChange struct {
	Added    map[string]int64
	Returned []string
}

// Empty reports whether nothing changed.
func (g GrantsChange) Empty() bool { return len(g.Added) == 0 && len(g.Returned) == 0 }

// TakeChange returns what the next write must carry besides the snapshot: the
// grant ledger's changes, and whether the campaign became active since the last
// write (the seam of the launch e-mails: that write records the event).
func (c *Campaign) TakeChange() (grants GrantsChange, activated bool) {
	grants, activated = c.unwritten, c.activatedNow
	c.unwritten, c.activatedNow = GrantsChange{}, false
	return grants, activated
}

// Settle applies what the clock decided since the last command: a launched
// campaign seen active for the first time is activated (once in its life, however
// often it is paused and launched again), and one past its end is ended for good.
// It reports whether anything changed.
func (c *Campaign) Settle(now time.Time) (changed bool) {
	if c.stage != stageLaunched {
		return false
	}
	switch c.StatusAt(now) {
	case StatusEnded:
		c.stage = stageEnded
		return true
	case StatusActive:
		if !c.activated {
			c.activated, c.activatedNow = true, true
			return true
		}
	}
	return false
}

// Activated reports whether the campaign has ever been active.
func (c *Campaign) Activated() bool { return c.activated }

// NextChange is when Settle will next have something to do, if ever: the start of
// a scheduled campaign, the end of a launched one.
func (c *Campaign) NextChange(now time.Time) (time.Time, bool) {
	if c.stage != stageLaunched {
		return time.Time{}, false
	}
	if !c.activated {
		// Due at the start, or now if that has passed: a write that finished
		// after the start must not skip the activation.
		return c.StartsAt, true
	}
	return c.EndsAt, true
}

// New returns a draft campaign from spec, checked at now.
func New(id string, spec Spec, now time.Time) (*Campaign, error) {
	if err := spec.Validate(now); err != nil {
		return nil, err
	}
	return &Campaign{ID: id, Spec: spec.normalized(), grants: map[string]int64{}}, nil
}

// StatusAt is the campaign's status at now.
func (c *Campaign) StatusAt(now time.Time) Status {
	switch {
	case c.stage == stageDraft:
		return StatusDraft
	case c.stage == stageEnded, !now.Before(c.EndsAt):
		return StatusEnded
	case c.stage == stagePaused:
		return StatusPaused
	case now.Before(c.StartsAt):
		return StatusScheduled
	default:
		return StatusActive
	}
}

// Edit replaces the spec of a draft.
func (c *Campaign) Edit(spec Spec, now time.Time) error {
	if c.stage != stageDraft {
		return ErrNotDraft
	}
	if err := spec.Validate(now); err != nil {
		return err
	}
	c.Spec = spec.normalized()
	return nil
}

// Launch moves a draft or a paused campaign to scheduled or active (by the clock).
// Launching a launched campaign changes nothing: a retried command is harmless.
func (c *Campaign) Launch(now time.Time) error {
	switch c.StatusAt(now) {
	case StatusDraft, StatusPaused:
		c.stage = stageLaunched
		return nil
	case StatusScheduled, StatusActive:
		return nil
	}
	return fmt.Errorf("%w: an ended campaign cannot be launched", ErrTransition)
}

// Pause stops the discount of a scheduled or active campaign until it is launched
// again. Pausing a paused campaign changes nothing.
func (c *Campaign) Pause(now time.Time) error {
	switch c.StatusAt(now) {
	case StatusScheduled, StatusActive:
		c.stage = stagePaused
		return nil
	case StatusPaused:
		return nil
	}
	return fmt.Errorf("%w: only a scheduled or active campaign can be paused", ErrTransition)
}

// End ends the campaign for good, from any status. Ending an ended campaign changes
// nothing.
func (c *Campaign) End() {
	c.stage = stageEnded
}

// Covers reports whether the campaign's targets include the SKU (by SKU or brand).
func (c *Campaign) Covers(sku, brand string) bool {
	_, bySKU := slices.BinarySearch(c.SKUs, sku)
	_, byBrand := slices.BinarySearch(c.Brands, brand)
	return bySKU || byBrand
}

// Remaining is how many units may still be sold at the discount (-1: no cap).
func (c *Campaign) Remaining() int64 {
	if c.MaxDiscountedUnits == 0 {
		return -1
	}
	return max(c.MaxDiscountedUnits-c.discountedUnits, 0)
}

// DiscountedUnits is how many units orders hold at the discount.
func (c *Campaign) DiscountedUnits() int64 { return c.discountedUnits }

// Orders is how many orders hold discounted units.
func (c *Campaign) Orders() int64 { return c.orders }

// Grant gives an order units at the discount: all of them or none. It is
// idempotent: the same order with the same units is granted again without a
// second count; with other units it is ErrGrantChange.
func (c *Campaign) Grant(orderID string, units int64, now time.Time) error {
	if units < 1 {
		return fmt.Errorf("%w: units must be positive", ErrInvalid)
	}
	if held, ok := c.grants[orderID]; ok {
		if held != units {
			return ErrGrantChange
		}
		return nil
	}
	if c.StatusAt(now) != StatusActive {
		return ErrNotActive
	}
	if r := c.Remaining(); r >= 0 && units > r {
		return fmt.Errorf("%w: %d asked, %d left", ErrCapReached, units, r)
	}
	c.grants[orderID] = units
	c.discountedUnits += units
	c.orders++
	if c.unwritten.Added == nil {
		c.unwritten.Added = make(map[string]int64)
	}
	c.unwritten.Added[orderID] = units
	return nil
}

// Return gives an order's units back to the cap (the order was cancelled, or its
// checkout failed after the grant). Returning what the order does not hold changes
// nothing.
func (c *Campaign) Return(orderID string) {
	units, ok := c.grants[orderID]
	if !ok {
		return
	}
	delete(c.grants, orderID)
	c.discountedUnits -= units
	c.orders--
	if _, unwritten := c.unwritten.Added[orderID]; unwritten {
		delete(c.unwritten.Added, orderID) // never stored: nothing to delete
	} else {
		c.unwritten.Returned = append(c.unwritten.Returned, orderID)
	}
}

// Holds reports the units an order holds at the discount (0: none).
func (c *Campaign) Holds(orderID string) int64 { return c.grants[orderID] }

// UnitDiscount is the discount on one unit of listCents at percent off: the one
// rounding of the shop's prices, half a cent and up rounded up, done once per unit.
// A line's discount is UnitDiscount times its quantity, so line totals add up to the
// subtotal less the discount exactly.
func UnitDiscount(listCents int64, percent int) int64 {
	if listCents <= 0 || percent <= 0 {
		return 0
	}
	return (listCents*int64(percent) + 50) / 100
}

// Best is the campaign that prices a unit of sku (of brand) at now: among the
// active campaigns covering it with units left, the highest percentage wins, then
// the earliest to end, then the smallest id. Campaigns never stack. nil: none.
func Best(campaigns []*Campaign, sku, brand string, now time.Time) *Campaign {
	var best *Campaign
	for _, c := range campaigns {
		if c.StatusAt(now) != StatusActive || !c.Covers(sku, brand) || c.Remaining() == 0 {
			continue
		}
		if best == nil || better(c, best) {
			best = c
		}
	}
	return best
}

func better(a, b *Campaign) bool {
	if a.PercentOff != b.PercentOff {
		return a.PercentOff > b.PercentOff
	}
	if !a.EndsAt.Equal(b.EndsAt) {
		return a.EndsAt.Before(b.EndsAt)
	}
	return a.ID < b.ID
}

// Snapshot is a campaign as it is stored: what the grain persists and reloads.
type Snapshot struct {
	ID string
	Spec
	// Stage is the stored status: draft, launched, paused or ended. A launched
	// campaign shows scheduled, active or ended by the clock.
	Stage     string
	Activated bool
	Grants    map[string]int64
}

// The stored stages.
const (
	storedDraft    = "draft"
	storedLaunched = "launched"
	storedPaused   = "paused"
	storedEnded    = "ended"
)

var stageNames = map[stage]string{stageDraft: storedDraft, stageLaunched: storedLaunched, stagePaused: storedPaused, stageEnded: storedEnded}

// Snapshot returns the campaign as it is stored.
func (c *Campaign) Snapshot() Snapshot {
	s := Snapshot{ID: c.ID, Spec: c.Spec, Stage: stageNames[c.stage], Activated: c.activated, Grants: make(map[string]int64, len(c.grants))}
	s.Brands, s.SKUs = slices.Clone(c.Brands), slices.Clone(c.SKUs)
	for id, units := range c.grants {
		s.Grants[id] = units
	}
	return s
}

// FromSnapshot rebuilds a stored campaign; the counters follow from its grants.
func FromSnapshot(s Snapshot) (*Campaign, error) {
	c := &Campaign{ID: s.ID, Spec: s.Spec.normalized(), activated: s.Activated, grants: make(map[string]int64, len(s.Grants))}
	found := false
	for st, name := range stageNames {
		if name == s.Stage {
			c.stage, found = st, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: stored stage %q", ErrInvalid, s.Stage)
	}
	for id, units := range s.Grants {
		if units < 1 {
			return nil, fmt.Errorf("%w: order %s holds %d units", ErrInvalid, id, units)
		}
		c.grants[id] = units
		c.discountedUnits += units
		c.orders++
	}
	return c, nil
}

// Listing is a campaign as listings and prices read it: everything but who holds
// its grants. The grain writes it with every snapshot, in the same transaction.
type Listing struct {
	Snapshot
	DiscountedUnits, Orders int64
	CreatedAt, UpdatedAt    time.Time
}

// Listing returns the campaign's listing as of now; created is when it was made.
func (c *Campaign) Listing(created, now time.Time) Listing {
	s := c.Snapshot()
	s.Grants = nil
	return Listing{Snapshot: s, DiscountedUnits: c.discountedUnits, Orders: c.orders, CreatedAt: created, UpdatedAt: now}
}

// FromListing is a read-only campaign for pricing: its counters come from the
// listing, and it holds no grants (commands go to the grain).
func FromListing(l Listing) (*Campaign, error) {
	s := l.Snapshot
	s.Grants = nil
	c, err := FromSnapshot(s)
	if err != nil {
		return nil, err
	}
	c.discountedUnits, c.orders = l.DiscountedUnits, l.Orders
	return c, nil
}
