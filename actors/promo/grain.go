package promo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/grainerr"
	"phoneshop/actors/snapshot"
	"phoneshop/grain/call"
	"phoneshop/grain/durable"
	"phoneshop/grain/grainctx"
	"phoneshop/notify/outbox"
	"phoneshop/protos/promopb"
	"phoneshop/protos/reasonpb"
)

// KindName is the cluster kind of promo grains.
const KindName = "Promo"

// Store persists campaign snapshots and their ledgers (grants, accounts' units).
// SavePromo is fenced: it succeeds only when the stored version is
// expectedVersion (0 = never saved), else it returns snapshot.ErrStale and
// writes nothing. In the same transaction it applies the ledgers' changes
// (returned grants first, then added ones; each account's units as given),
// writes the listing, and writes the events (the campaign's activation) to the
// outbox.
//
// PromoGrants reads the grants made at or after since (zero: all of them); a
// grant stored without its time counts as made before any since. PromoGrant
// looks up one order's grant, PromoCustomerUnits one account's units (0: none).
type Store interface {
	LoadPromo(ctx context.Context, id string) (snapshot.Snapshot, error)
	PromoGrants(ctx context.Context, id string, since time.Time) (map[string]Grant, error)
	PromoGrant(ctx context.Context, id, orderID string) (Grant, bool, error)
	PromoCustomerUnits(ctx context.Context, id, accountID string) (int64, error)
	SavePromo(ctx context.Context, expectedVersion int64, state []byte, l Listing, change GrantsChange, events []outbox.Event) error
}

// ActivatedEvent is the payload of the promo.activated event: the campaign's
// e-mails hang on it.
type ActivatedEvent struct {
	PromoID     string    `json:"promo_id"`
	ActivatedAt time.Time `json:"activated_at"`
}

// Deps is what a promo grain needs from the member it runs on.
type Deps struct {
	Store Store
	Now   func() time.Time
	// StoreTimeout bounds one load or save (within the callers' deadlines).
	StoreTimeout time.Duration
	// Calls is the member's grain-call policy: its timeout bounds a command whose
	// caller sent no deadline.
	Calls call.Policy
	// GroupCommit lets the grain apply commands while a write is in flight (see
	// grain/durable): grants of a hot campaign share writes.
	GroupCommit bool
	Logger      *slog.Logger
}

var deps = grainctx.NewSlot[Deps]()

// Attach makes d the dependencies of the promo grains of system.
func Attach(system *actor.ActorSystem, d Deps) { deps.Put(system, d) }

// Kind returns the cluster kind; an idle grain passivates after idle.
func Kind(idle time.Duration) *cluster.Kind {
	return promopb.NewPromoKind(func() promopb.Promo { return &grain{} }, idle)
}

// settleTick is the grain's own timer: the campaign's clock may have decided
// something (it started, it ended).
type settleTick struct{}

// reloadRetry is how soon a grain that could not load tries again on its own.
const reloadRetry = time.Second

type grain struct {
	deps Deps
	id   string
	log  *slog.Logger
	// campaign is nil until loaded, and while the campaign was never created.
	campaign *Campaign
	loaded   bool
	created  time.Time
	updated  time.Time
	writes   durable.Pipeline
	timer    scheduler.CancelFunc
	sched    *scheduler.TimerScheduler
	self     *actor.PID
	root     *actor.RootContext
}

func (g *grain) Init(gctx cluster.GrainContext) {
	g.deps = deps.Get(gctx.ActorSystem())
	g.id = gctx.Identity()
	g.log = g.deps.Logger.With("kind", KindName, "promo", g.id)
	g.self = gctx.Self()
	g.root = gctx.ActorSystem().Root
	g.sched = scheduler.NewTimerScheduler(g.root)
	ctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
	defer cancel()
	if err := g.load(ctx); err != nil {
		g.log.Error("load snapshot failed; retrying", "err", err, "in", reloadRetry)
		g.arm(reloadRetry)
		return
	}
	// What the clock decided while nobody held the campaign is settled now.
	g.root.Send(g.self, &settleTick{})
}

func (g *grain) Terminate(cluster.GrainContext) {
	if g.timer != nil {
		g.timer()
	}
}

func (g *grain) ReceiveDefault(ctx cluster.GrainContext) {
	switch msg := ctx.Message().(type) {
	case *durable.Done:
		g.writeDone(ctx, msg.Err)
	case *settleTick:
		g.timer = nil
		tctx, cancel := context.WithTimeout(context.Background(), g.deps.StoreTimeout)
		defer cancel()
		if err := g.apply(tctx, ctx, func(context.Context, *Campaign) (bool, any, error) { return false, nil, nil }); err != nil {
			g.arm(reloadRetry)
		}
	}
}

func (g *grain) Create(req *promopb.CreatePromoRequest, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	spec := specFromProto(req.Spec)
	return g.serve(req, gctx, func(_ context.Context, c *Campaign) (bool, any, error) {
		if c != nil {
			// A retried create of the same spec is the same campaign.
			if !sameSpec(c.Spec, spec.normalized()) {
				return false, nil, reasonpb.ErrConflict("promo %s exists with another spec", g.id)
			}
			return false, nil, nil
		}
		created, err := New(g.id, spec, g.deps.Now())
		if err != nil {
			return false, nil, err
		}
		g.campaign = created
		return true, nil, nil
	})
}

func (g *grain) Get(req *promopb.GetPromoRequest, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, existing(func(*Campaign) (bool, error) { return false, nil }))
}

func (g *grain) Edit(req *promopb.EditPromoRequest, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, existing(func(c *Campaign) (bool, error) {
		spec, err := patched(c.Spec, req.GetPatch())
		if err != nil {
			return false, err
		}
		if err := c.Edit(spec, g.deps.Now()); err != nil {
			return false, err
		}
		return true, nil
	}))
}

func (g *grain) Launch(req *promopb.PromoCommand, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, existing(func(c *Campaign) (bool, error) {
		before := c.stage
		err := c.Launch(g.deps.Now())
		return c.stage != before, err
	}))
}

func (g *grain) Pause(req *promopb.PromoCommand, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, existing(func(c *Campaign) (bool, error) {
		before := c.stage
		err := c.Pause(g.deps.Now())
		return c.stage != before, err
	}))
}

func (g *grain) End(req *promopb.PromoCommand, _ func(*promopb.PromoView), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, existing(func(c *Campaign) (bool, error) {
		before := c.stage
		c.End()
		return c.stage != before, nil
	}))
}

// Grant takes an order's units at the discount. The limit per customer is checked
// here, by the campaign's single writer, in the same step as the grant that counts
// against it: no two orders of one account can both see the allowance free.
func (g *grain) Grant(req *promopb.GrantRequest, _ func(*promopb.GrantReply), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, func(ctx context.Context, c *Campaign) (bool, any, error) {
		if c == nil {
			return false, nil, reasonpb.ErrPriceChanged("promo %s does not exist", g.id).
				WithMetadata(map[string]string{"promos": g.id})
		}
		if err := g.know(ctx, c, req.OrderId, req.OrderCreatedUnixMs, req.AccountId); err != nil {
			return false, nil, err
		}
		held := c.Holds(req.OrderId)
		if err := c.Grant(req.OrderId, req.AccountId, req.Units, g.deps.Now()); err != nil {
			return false, nil, err
		}
		return held == 0, &promopb.GrantReply{Remaining: c.Remaining()}, nil
	})
}

func (g *grain) Return(req *promopb.ReturnGrantRequest, _ func(*promopb.GrantReply), _ func(error), gctx cluster.GrainContext) error {
	return g.serve(req, gctx, func(ctx context.Context, c *Campaign) (bool, any, error) {
		if c == nil {
			return false, &promopb.GrantReply{Remaining: -1}, nil
		}
		if err := g.know(ctx, c, req.OrderId, req.OrderCreatedUnixMs, ""); err != nil {
			return false, nil, err
		}
		held := c.Holds(req.OrderId)
		if err := c.Return(req.OrderId); err != nil {
			return false, nil, err
		}
		return held > 0, &promopb.GrantReply{Remaining: c.Remaining()}, nil
	})
}

// know makes sure the campaign knows what a Grant or a Return needs before it
// runs: whether orderID holds a grant (an order created before the grants in
// memory begin, or whose creation is unknown, createdMs 0, is looked up in the
// store), and the units of the order's account (accountID, or the grant's own
// account when empty) when the campaign limits them. Memory drops only what is
// durable (Campaign.Compact), so the store holds everything memory does not: a
// retried grant of an old order counts once, a cancel gives its units back once,
// and an account's units are never read from before a write of them committed.
func (g *grain) know(ctx context.Context, c *Campaign, orderID string, createdMs int64, accountID string) error {
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	var created time.Time
	if createdMs > 0 {
		created = time.UnixMilli(createdMs)
	}
	if !c.KnowsGrant(orderID, created) {
		grant, found, err := g.deps.Store.PromoGrant(ctx, g.id, orderID)
		if err != nil {
			return fmt.Errorf("promo %s: look up the grant of %s: %w", g.id, orderID, err)
		}
		c.RecallGrant(orderID, grant, found)
	}
	if accountID == "" {
		accountID = c.GrantAccount(orderID)
	}
	if !c.KnowsCustomer(accountID) {
		units, err := g.deps.Store.PromoCustomerUnits(ctx, g.id, accountID)
		if err != nil {
			return fmt.Errorf("promo %s: look up the units of %s: %w", g.id, accountID, err)
		}
		c.RecallCustomer(accountID, units)
	}
	return nil
}

// command is one request's work on the campaign (nil: never created); ctx bounds
// its lookups. It reports whether it changed the campaign, and its answer (nil:
// the campaign's view).
type command func(ctx context.Context, c *Campaign) (changed bool, reply any, err error)

// existing adapts a command on a campaign that must exist.
func existing(f func(*Campaign) (bool, error)) command {
	return func(_ context.Context, c *Campaign) (bool, any, error) {
		if c == nil {
			return false, nil, reasonpb.ErrNotFound("promo not found")
		}
		changed, err := f(c)
		return changed, nil, err
	}
}

// serve applies one request's command under the caller's deadline; a command whose
// caller has given up is not applied.
func (g *grain) serve(req call.Deadlined, gctx cluster.GrainContext, cmd command) error {
	ctx, cancel := call.Serve(req, g.deps.Calls.CallTimeout())
	defer cancel()
	if err := ctx.Err(); err != nil {
		return reasonpb.ErrUnavailable("promo %s: the caller's deadline passed before the command ran", g.id)
	}
	g.writes.Serve(ctx)
	return g.apply(ctx, gctx, cmd)
}

// apply settles the campaign's clock, runs cmd, and hands its answer to the write
// pipeline, which sends it once everything the command observed is durable. Only
// a failure to load is returned (the generated code answers it at once).
func (g *grain) apply(ctx context.Context, gctx cluster.GrainContext, cmd command) error {
	if !g.loaded {
		if err := g.load(ctx); err != nil {
			return grainerr.Unexpected(g.log, fmt.Errorf("promo %s: load: %w", g.id, err))
		}
	}
	now := g.deps.Now()
	settled := g.campaign != nil && g.campaign.Settle(now)
	changed, reply, err := cmd(ctx, g.campaign)
	if g.campaign != nil && g.campaign.Settle(now) {
		settled = true // a launch at or after starts_at activates at once
	}
	if changed || settled {
		g.updated = now
		if g.created.IsZero() {
			g.created = now // the create
		}
	}
	switch {
	case err != nil:
		reply = g.toGrainError(err)
	case reply == nil && g.campaign == nil:
		reply = reasonpb.ErrNotFound("promo %s not found", g.id) // the grain's own timer
	case reply == nil:
		reply = g.view(now)
	}
	if g.writes.Submit(gctx, changed || settled, reply) {
		g.startWrite(gctx)
	}
	return nil
}

func (g *grain) view(now time.Time) *promopb.PromoView {
	c := g.campaign
	return &promopb.PromoView{
		Id: g.id, Spec: specToProto(c.Spec), Status: string(c.StatusAt(now)),
		DiscountedUnits: c.DiscountedUnits(), Orders: c.Orders(),
		CreatedAt: timestamppb.New(g.created), UpdatedAt: timestamppb.New(g.updated),
	}
}

// startWrite writes the campaign, fenced on the durable version: in the background
// with group commit (the answer comes back as durable.Done), inline without.
func (g *grain) startWrite(ctx cluster.GrainContext) {
	version := g.writes.Begin()
	c := g.campaign
	snap := c.Snapshot()
	state, err := proto.Marshal(&promopb.PromoState{
		Spec: specToProto(c.Spec), Stage: snap.Stage, Activated: snap.Activated,
		CreatedAt: timestamppb.New(g.created), UpdatedAt: timestamppb.New(g.updated),
		DiscountedUnits: c.DiscountedUnits(), Orders: c.Orders(), TotalsKept: true,
	})
	listing := c.Listing(g.created, g.updated)
	grants, activated := c.TakeChange()
	var events []outbox.Event
	if activated && err == nil {
		var e outbox.Event
		e, err = outbox.New(outbox.PromoActivated, g.id, ActivatedEvent{PromoID: g.id, ActivatedAt: g.updated}, g.updated)
		events = append(events, e)
	}
	if done, err := g.writes.Write(g.root, g.self, g.deps.GroupCommit, g.deps.StoreTimeout, func(ctx context.Context) error {
		if err != nil {
			return err
		}
		return g.deps.Store.SavePromo(ctx, version, state, listing, grants, events)
	}); done {
		g.writeDone(ctx, err)
	}
}

func (g *grain) writeDone(ctx cluster.GrainContext, err error) {
	again, failed := g.writes.Finish(ctx, err, func(err error) error {
		return grainerr.Unexpected(g.log, fmt.Errorf("promo %s: write: %w", g.id, err))
	})
	if failed {
		if errors.Is(err, snapshot.ErrStale) {
			g.log.Warn("snapshot fenced off: another activation wrote a newer version; reloading", "version", g.writes.Version())
		}
		g.campaign, g.loaded = nil, false
		g.arm(reloadRetry)
		return
	}
	// No write is in flight now: everything but the changes made since the
	// write began is durable, and memory may drop it.
	if g.campaign != nil {
		g.campaign.Compact(g.deps.Now())
	}
	if again {
		g.startWrite(ctx)
	}
	g.armNext()
}

func (g *grain) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.deps.StoreTimeout)
	defer cancel()
	snap, err := g.deps.Store.LoadPromo(ctx, g.id)
	if err != nil {
		return err
	}
	g.campaign, g.created, g.updated = nil, time.Time{}, time.Time{}
	if snap.Version > 0 {
		var st promopb.PromoState
		if err := proto.Unmarshal(snap.State, &st); err != nil {
			return fmt.Errorf("decode snapshot v%d: %w", snap.Version, err)
		}
		s := Snapshot{ID: g.id, Spec: specFromProto(st.Spec), Stage: st.Stage, Activated: st.Activated}
		if st.TotalsKept {
			// Only the recent grants: an older one is looked up when a command
			// names its order (know).
			s.Totals = &Totals{DiscountedUnits: st.DiscountedUnits, Orders: st.Orders}
			s.GrantsFrom = g.deps.Now().Add(-LedgerWindow)
		}
		// A snapshot from before the totals were kept sums them from the whole
		// ledger, once: its next write keeps them.
		grants, err := g.deps.Store.PromoGrants(ctx, g.id, s.GrantsFrom)
		if err != nil {
			return err
		}
		s.Grants = grants
		c, err := FromSnapshot(s)
		if err != nil {
			return err
		}
		g.campaign, g.created, g.updated = c, st.CreatedAt.AsTime(), st.UpdatedAt.AsTime()
	}
	g.loaded = true
	g.writes.Reset(snap.Version)
	g.armNext()
	return nil
}

// armNext schedules the grain's next settle at the campaign's next change.
func (g *grain) armNext() {
	if g.campaign == nil {
		return
	}
	if next, ok := g.campaign.NextChange(g.deps.Now()); ok {
		g.arm(max(time.Until(next), time.Millisecond))
	}
}

func (g *grain) arm(in time.Duration) {
	if g.timer != nil {
		g.timer()
	}
	g.timer = g.sched.SendOnce(in, g.self, &settleTick{})
}

func (g *grain) toGrainError(err error) error {
	var answered *cluster.GrainErrorResponse
	var limit *LimitError
	switch {
	case errors.As(err, &answered):
		return answered
	case errors.Is(err, ErrInvalid):
		return reasonpb.ErrInvalid("%s", strings.TrimPrefix(err.Error(), "promo: "))
	case errors.Is(err, ErrNotDraft), errors.Is(err, ErrTransition):
		return reasonpb.ErrConflict("%s", strings.TrimPrefix(err.Error(), "promo: "))
	case errors.Is(err, ErrNotActive), errors.Is(err, ErrCapReached):
		return reasonpb.ErrPriceChanged("%v", err).WithMetadata(map[string]string{"promos": g.id})
	case errors.As(err, &limit):
		return reasonpb.ErrLimitExceeded("%v", err).WithMetadata(map[string]string{
			"promo_id": g.id, "remaining": strconv.FormatInt(limit.Remaining, 10)})
	case errors.Is(err, ErrGrantChange):
		return reasonpb.ErrIdempotencyMismatch("%v", err)
	default:
		return grainerr.Unexpected(g.log, err)
	}
}

// The API's names of the fields a patch may name.
var patchFields = []string{"name", "percent_off", "brands", "skus", "starts_at", "ends_at",
	"max_discounted_units", "max_units_per_customer", "email_subject", "email_body"}

// patched is spec with the fields p names taken from p.
func patched(spec Spec, p *promopb.PromoPatch) (Spec, error) {
	from := specFromProto(p.GetSpec())
	for _, f := range p.GetFields() {
		switch f {
		case "name":
			spec.Name = from.Name
		case "percent_off":
			spec.PercentOff = from.PercentOff
		case "brands":
			spec.Brands = from.Brands
		case "skus":
			spec.SKUs = from.SKUs
		case "starts_at":
			spec.StartsAt = from.StartsAt
		case "ends_at":
			spec.EndsAt = from.EndsAt
		case "max_discounted_units":
			spec.MaxDiscountedUnits = from.MaxDiscountedUnits
		case "max_units_per_customer":
			spec.MaxUnitsPerCustomer = from.MaxUnitsPerCustomer
		case "email_subject":
			spec.EmailSubject = from.EmailSubject
		case "email_body":
			spec.EmailBody = from.EmailBody
		default:
			return spec, fmt.Errorf("%w: %q is not a field of a campaign (%v)", ErrInvalid, f, patchFields)
		}
	}
	return spec, nil
}

func sameSpec(a, b Spec) bool {
	return a.Name == b.Name && a.PercentOff == b.PercentOff && slices.Equal(a.Brands, b.Brands) &&
		slices.Equal(a.SKUs, b.SKUs) && a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) &&
		a.MaxDiscountedUnits == b.MaxDiscountedUnits && a.MaxUnitsPerCustomer == b.MaxUnitsPerCustomer &&
		a.EmailSubject == b.EmailSubject && a.EmailBody == b.EmailBody
}

// SpecToProto converts a spec to its wire form.
func SpecToProto(s Spec) *promopb.PromoSpec { return specToProto(s) }

// SpecFromProto converts a spec's wire form.
func SpecFromProto(p *promopb.PromoSpec) Spec { return specFromProto(p) }

func specToProto(s Spec) *promopb.PromoSpec {
	p := &promopb.PromoSpec{
		Name: s.Name, PercentOff: int32(s.PercentOff), Brands: slices.Clone(s.Brands), Skus: slices.Clone(s.SKUs),
		MaxDiscountedUnits: s.MaxDiscountedUnits, MaxUnitsPerCustomer: s.MaxUnitsPerCustomer,
		EmailSubject: s.EmailSubject, EmailBody: s.EmailBody,
	}
	if !s.StartsAt.IsZero() {
		p.StartsAt = timestamppb.New(s.StartsAt)
	}
	if !s.EndsAt.IsZero() {
		p.EndsAt = timestamppb.New(s.EndsAt)
	}
	return p
}

func specFromProto(p *promopb.PromoSpec) Spec {
	s := Spec{
		Name: p.GetName(), PercentOff: int(p.GetPercentOff()), Brands: slices.Clone(p.GetBrands()), SKUs: slices.Clone(p.GetSkus()),
		MaxDiscountedUnits: p.GetMaxDiscountedUnits(), MaxUnitsPerCustomer: p.GetMaxUnitsPerCustomer(),
		EmailSubject: p.GetEmailSubject(), EmailBody: p.GetEmailBody(),
	}
	if p.GetStartsAt() != nil {
		s.StartsAt = p.GetStartsAt().AsTime()
	}
	if p.GetEndsAt() != nil {
		s.EndsAt = p.GetEndsAt().AsTime()
	}
	return s
}
