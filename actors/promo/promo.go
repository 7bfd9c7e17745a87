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
//
// A campaign may limit the units one account buys at its discount over its life
// (MaxUnitsPerCustomer). The units each account holds are counted by the same
// single writer as the cap, so no race of orders, members or retries goes past
// the limit.
//
// The grant ledger (a grant per order) and the accounts' units are kept in full
// by the store, beside the snapshot, and only in part in memory: the grants made
// in the last LedgerWindow, and the accounts that ordered lately. So an activation
// loads a bounded part of a campaign's history however many orders and customers
// it had. What memory does not hold is looked up before the command that needs it
// (the grain does it: KnowsGrant, RecallGrant, KnowsCustomer, RecallCustomer), and
// memory drops only what is durable (Compact).
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
	// ErrLimitReached is wrapped by a *LimitError: the order's account would hold
	// more units at the discount than the campaign allows one account.
	ErrLimitReached = errors.New("promo: over the campaign's limit per customer")
	// ErrNotLoaded is a command on a grant or an account whose units memory does
	// not hold and the caller did not recall: a bug, never an answer to a shopper.
	ErrNotLoaded = errors.New("promo: ledger entry not in memory")
)

// LimitError refuses a grant over the campaign's limit per customer: Remaining
// is how many more units the account may still buy at the discount.
type LimitError struct{ Remaining int64 }

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %d units left to this account", ErrLimitReached, e.Remaining)
}

// Unwrap makes errors.Is(err, ErrLimitReached) hold.
func (e *LimitError) Unwrap() error { return ErrLimitReached }

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
	// MaxPerCustomer bounds MaxUnitsPerCustomer: a limit per customer is a
	// handful of units, and a larger number is a typo for a cap.
	MaxPerCustomer = 100
)

// LedgerWindow is how long a grant stays in memory after it was made: long
// enough that every grain call of a checkout that runs its course (the grant, its
// retries, a return when the checkout fails) meets its order's grant in memory;
// only a cancel, or a saga stuck longer, costs the lookup of one row. An
// activation loads at most this much of a campaign's grants.
const LedgerWindow = 10 * time.Minute

// clockSkew is how far apart members' clocks may be: an order created less than
// this after the window began may hold a grant from before it, and is looked up.
const clockSkew = time.Minute

// compactEvery is how often Compact scans the grants in memory for ones to drop.
const compactEvery = time.Minute

// maxCustomersInMemory bounds the accounts' units a campaign keeps in memory once
// they are durable: a campaign with a million customers holds the latest few.
const maxCustomersInMemory = 10_000

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
	// MaxUnitsPerCustomer is the most units one account buys at the discount
	// over the campaign's life; 0 is no limit.
	MaxUnitsPerCustomer int64
	EmailSubject        string
	EmailBody           string
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
	if s.MaxUnitsPerCustomer < 0 || s.MaxUnitsPerCustomer > MaxPerCustomer {
		problems = append(problems, fmt.Sprintf("max_units_per_customer must be an integer from 1 to %d", MaxPerCustomer))
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

// Grant is the discounted units one order holds, the order's account, and when
// they were granted. Units 0 in memory marks an order known to hold none.
type Grant struct {
	Units     int64
	AccountID string
	At        time.Time
}

// Campaign is one campaign and its counters.
type Campaign struct {
	ID string
	Spec
	stage stage
	// grants is the part of the grant ledger in memory: every grant made at or
	// after grantsFrom (all of them while grantsFrom is zero), older ones looked
	// up for a command, and orders known to hold none (Units 0).
	grants     map[string]Grant
	grantsFrom time.Time
	// customers are the units accounts hold at the discount, for the accounts in
	// memory (a campaign with a limit per customer only).
	customers map[string]int64
	// discountedUnits is the sum of every grant; orders counts them.
	discountedUnits int64
	orders          int64
	compactedAt     time.Time
	// activated is set once the campaign has been seen active; activatedNow until
	// the write that carries the event takes it.
	activated, activatedNow bool
	// unwritten are the ledgers' changes no write has taken yet.
	unwritten GrantsChange
}

// GrantsChange is what changed in a campaign's ledgers: grants added (order ->
// grant), orders whose grant was returned, and the units of the accounts whose
// units changed (account -> units now). They are stored beside the snapshot, a
// row per order and per account, so that a write carries only its own changes.
type GrantsChange struct {
	Added     map[string]Grant
	Returned  []string
	Customers map[string]int64
}

// Empty reports whether nothing changed.
func (g GrantsChange) Empty() bool {
	return len(g.Added) == 0 && len(g.Returned) == 0 && len(g.Customers) == 0
}

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
	return &Campaign{ID: id, Spec: spec.normalized(), grants: map[string]Grant{}, customers: map[string]int64{}}, nil
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

// KnowsGrant reports whether the campaign knows, without the store, whether
// orderID holds a grant: the order is in memory, or it was created (created, the
// order's own clock; zero if unknown) after every grant made since then is in
// memory. Grant and Return need to know the order: the caller recalls one it
// does not know first (RecallGrant).
func (c *Campaign) KnowsGrant(orderID string, created time.Time) bool {
	if _, ok := c.grants[orderID]; ok {
		return true
	}
	return c.grantsFrom.IsZero() || (!created.IsZero() && !created.Before(c.grantsFrom.Add(clockSkew)))
}

// RecallGrant puts what the store holds of orderID's grant in memory (found
// false: none). It changes nothing the campaign already knows.
func (c *Campaign) RecallGrant(orderID string, g Grant, found bool) {
	if _, ok := c.grants[orderID]; ok {
		return
	}
	if !found {
		g = Grant{}
	}
	c.grants[orderID] = g
}

// GrantAccount is the account of the grant orderID holds ("" none).
func (c *Campaign) GrantAccount(orderID string) string { return c.grants[orderID].AccountID }

// KnowsCustomer reports whether the campaign knows the units accountID holds
// without the store: it counts no units per account (no limit), or the account
// is in memory. Grant and Return need to know the order's account: the caller
// recalls one it does not know first (RecallCustomer).
func (c *Campaign) KnowsCustomer(accountID string) bool {
	if c.MaxUnitsPerCustomer == 0 || accountID == "" {
		return true
	}
	_, ok := c.customers[accountID]
	return ok
}

// RecallCustomer puts the units the store holds for accountID in memory. It
// changes nothing the campaign already knows.
func (c *Campaign) RecallCustomer(accountID string, units int64) {
	if _, ok := c.customers[accountID]; !ok {
		c.customers[accountID] = units
	}
}

// Grant gives an order of accountID units at the discount: all of them or none.
// It is idempotent: the same order with the same units is granted again without a
// second count; with other units it is ErrGrantChange. Over the limit per
// customer it is a *LimitError; past the cap ErrCapReached.
func (c *Campaign) Grant(orderID, accountID string, units int64, now time.Time) error {
	if units < 1 {
		return fmt.Errorf("%w: units must be positive", ErrInvalid)
	}
	if held := c.grants[orderID].Units; held > 0 {
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
	limited := c.MaxUnitsPerCustomer > 0
	if limited {
		if accountID == "" {
			return fmt.Errorf("%w: a campaign with a limit per customer grants only to an account", ErrInvalid)
		}
		used, ok := c.customers[accountID]
		if !ok {
			return fmt.Errorf("%w: account %s", ErrNotLoaded, accountID)
		}
		if used+units > c.MaxUnitsPerCustomer {
			return &LimitError{Remaining: max(c.MaxUnitsPerCustomer-used, 0)}
		}
	}
	g := Grant{Units: units, AccountID: accountID, At: now}
	c.grants[orderID] = g
	c.discountedUnits += units
	c.orders++
	if c.unwritten.Added == nil {
		c.unwritten.Added = make(map[string]Grant)
	}
	c.unwritten.Added[orderID] = g
	if limited {
		c.setCustomer(accountID, c.customers[accountID]+units)
	}
	return nil
}

func (c *Campaign) setCustomer(accountID string, units int64) {
	c.customers[accountID] = units
	if c.unwritten.Customers == nil {
		c.unwritten.Customers = make(map[string]int64)
	}
	c.unwritten.Customers[accountID] = units
}

// Return gives an order's units back to the cap and to its account's allowance
// (the order was cancelled, or its checkout failed after the grant). Returning
// what the order does not hold changes nothing.
func (c *Campaign) Return(orderID string) error {
	g := c.grants[orderID]
	if g.Units == 0 {
		return nil
	}
	counted := c.MaxUnitsPerCustomer > 0 && g.AccountID != ""
	if _, ok := c.customers[g.AccountID]; counted && !ok {
		return fmt.Errorf("%w: account %s", ErrNotLoaded, g.AccountID)
	}
	// Kept as an order known to hold none until Compact: until its row's delete
	// is durable, a lookup in the store would still find the grant.
	c.grants[orderID] = Grant{}
	c.discountedUnits -= g.Units
	c.orders--
	if _, unwritten := c.unwritten.Added[orderID]; unwritten {
		delete(c.unwritten.Added, orderID) // never stored: nothing to delete
	} else {
		c.unwritten.Returned = append(c.unwritten.Returned, orderID)
	}
	if counted {
		c.setCustomer(g.AccountID, max(c.customers[g.AccountID]-g.Units, 0))
	}
	return nil
}

// Holds reports the units an order holds at the discount (0: none).
func (c *Campaign) Holds(orderID string) int64 { return c.grants[orderID].Units }

// CustomerUnits reports the units accountID holds at the discount, as far as
// memory knows (see KnowsCustomer).
func (c *Campaign) CustomerUnits(accountID string) int64 { return c.customers[accountID] }

// Compact drops from memory what the store holds and no command needs soon: the
// grants made before now-LedgerWindow, the orders known to hold none, and the
// accounts' units beyond the most recent maxCustomersInMemory. It keeps every
// change no write has taken. The caller calls it only when no write is in
// flight, right after one committed: then everything but the unwritten changes
// is durable, and whatever memory drops the store holds.
func (c *Campaign) Compact(now time.Time) {
	if len(c.customers) > maxCustomersInMemory {
		for id := range c.customers {
			if _, unwritten := c.unwritten.Customers[id]; !unwritten {
				delete(c.customers, id)
			}
		}
	}
	if now.Before(c.compactedAt.Add(compactEvery)) {
		return
	}
	c.compactedAt = now
	cutoff := now.Add(-LedgerWindow)
	if !cutoff.After(c.grantsFrom) {
		return
	}
	returned := make(map[string]bool, len(c.unwritten.Returned))
	for _, id := range c.unwritten.Returned {
		returned[id] = true
	}
	for id, g := range c.grants {
		_, added := c.unwritten.Added[id]
		if (g.Units == 0 || g.At.Before(cutoff)) && !added && !returned[id] {
			delete(c.grants, id)
		}
	}
	c.grantsFrom = cutoff
}

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
	// Totals are the campaign's counters; nil for a campaign stored before they
	// were, whose counters then follow from Grants, the whole ledger.
	Totals *Totals
	// Grants are the part of the grant ledger in memory: every grant made at or
	// after GrantsFrom, or the whole ledger while GrantsFrom is zero.
	Grants     map[string]Grant
	GrantsFrom time.Time
}

// Totals are a campaign's counters: the units orders hold at its discount, and
// how many orders.
type Totals struct {
	DiscountedUnits, Orders int64
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
	s := Snapshot{ID: c.ID, Spec: c.Spec, Stage: stageNames[c.stage], Activated: c.activated,
		Totals: &Totals{DiscountedUnits: c.discountedUnits, Orders: c.orders}, Grants: make(map[string]Grant, len(c.grants)),
		GrantsFrom: c.grantsFrom}
	s.Brands, s.SKUs = slices.Clone(c.Brands), slices.Clone(c.SKUs)
	for id, g := range c.grants {
		if g.Units > 0 {
			s.Grants[id] = g
		}
	}
	return s
}

// FromSnapshot rebuilds a stored campaign.
func FromSnapshot(s Snapshot) (*Campaign, error) {
	c := &Campaign{ID: s.ID, Spec: s.Spec.normalized(), activated: s.Activated, grants: make(map[string]Grant, len(s.Grants)),
		grantsFrom: s.GrantsFrom, customers: map[string]int64{}}
	found := false
	for st, name := range stageNames {
		if name == s.Stage {
			c.stage, found = st, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: stored stage %q", ErrInvalid, s.Stage)
	}
	var units int64
	for id, g := range s.Grants {
		if g.Units < 1 {
			return nil, fmt.Errorf("%w: order %s holds %d units", ErrInvalid, id, g.Units)
		}
		c.grants[id] = g
		units += g.Units
	}
	switch {
	case s.Totals != nil:
		c.discountedUnits, c.orders = s.Totals.DiscountedUnits, s.Totals.Orders
		if c.discountedUnits < units || c.orders < int64(len(s.Grants)) {
			return nil, fmt.Errorf("%w: totals %+v below the %d units of %d grants in memory", ErrInvalid, *s.Totals, units, len(s.Grants))
		}
	case !s.GrantsFrom.IsZero():
		return nil, fmt.Errorf("%w: neither totals nor the whole grant ledger", ErrInvalid)
	default:
		c.discountedUnits, c.orders = units, int64(len(s.Grants))
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
	s.Grants, s.GrantsFrom, s.Totals = nil, time.Time{}, nil
	return Listing{Snapshot: s, DiscountedUnits: c.discountedUnits, Orders: c.orders, CreatedAt: created, UpdatedAt: now}
}

// FromListing is a read-only campaign for pricing: its counters come from the
// listing, and it holds no grants (commands go to the grain).
func FromListing(l Listing) (*Campaign, error) {
	s := l.Snapshot
	s.Grants, s.GrantsFrom = nil, time.Time{}
	s.Totals = &Totals{DiscountedUnits: l.DiscountedUnits, Orders: l.Orders}
	return FromSnapshot(s)
}
