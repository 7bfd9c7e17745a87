package promo_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"phoneshop/actors/promo"
	"phoneshop/actors/snapshot"
	"phoneshop/cluster/member"
	"phoneshop/internal/shoptest"
	"phoneshop/notify/outbox"
	"phoneshop/protos/promopb"
	"phoneshop/protos/reasonpb"
)

// memStore is an in-memory promo.Store that keeps the documented contract: a save
// is fenced on the stored version (snapshot.ErrStale otherwise) and, in the same
// step, deletes the returned grants, inserts the added ones (an order already in
// the ledger is a duplicate key) and stores the listing.
type memStore struct {
	// saveDelay is each save's latency (set before the member starts): it keeps a
	// write in flight long enough for commands to pile up behind it.
	saveDelay time.Duration
	// gate, while set, holds every save until it is closed; started hears of each
	// held save.
	gate    atomic.Pointer[chan struct{}]
	started chan struct{}

	mu     sync.Mutex
	promos map[string]*storedPromo
	saves  []savedWrite
	loads  int
	// grantRowsLoaded counts the grants PromoGrants returned (activations),
	// lookups the single rows PromoGrant and PromoCustomerUnits read.
	grantRowsLoaded, lookups int
	// expired are the saves refused because their context had ended.
	expired []string
	// anomalies are ledger changes a real store would take silently but that
	// show the grain's idea of the ledger is wrong (a returned grant not stored).
	anomalies []string
}

type storedPromo struct {
	version int64
	state   []byte
	listing promo.Listing
	// grants are the units of each grant, ledger the grants whole, customers
	// the units of each account.
	grants    map[string]int64
	ledger    map[string]promo.Grant
	customers map[string]int64
}

// savedWrite is one SavePromo that got past the fence.
type savedWrite struct {
	id        string
	expected  int64
	stage     string
	activated bool
	grants    promo.GrantsChange
}

func newMemStore(t *testing.T) *memStore {
	t.Helper()
	s := &memStore{promos: map[string]*storedPromo{}, started: make(chan struct{}, 1)}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.anomalies) > 0 {
			t.Errorf("the grain wrote ledger changes that do not match the stored ledger: %v", s.anomalies)
		}
		if len(s.expired) > 0 {
			t.Errorf("the grain started saves whose context had already ended: %v", s.expired)
		}
	})
	return s
}

func (s *memStore) LoadPromo(ctx context.Context, id string) (snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return snapshot.Snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	p, ok := s.promos[id]
	if !ok {
		return snapshot.Snapshot{}, nil
	}
	return snapshot.Snapshot{Version: p.version, State: slices.Clone(p.state)}, nil
}

func (s *memStore) PromoGrants(ctx context.Context, id string, since time.Time) (map[string]promo.Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	grants := map[string]promo.Grant{}
	if p, ok := s.promos[id]; ok {
		for order, g := range p.ledger {
			if !g.At.Before(since) {
				grants[order] = g
			}
		}
	}
	s.grantRowsLoaded += len(grants)
	return grants, nil
}

func (s *memStore) PromoGrant(ctx context.Context, id, orderID string) (promo.Grant, bool, error) {
	if err := ctx.Err(); err != nil {
		return promo.Grant{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if p, ok := s.promos[id]; ok {
		g, found := p.ledger[orderID]
		return g, found, nil
	}
	return promo.Grant{}, false, nil
}

func (s *memStore) PromoCustomerUnits(ctx context.Context, id, accountID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if p, ok := s.promos[id]; ok {
		return p.customers[accountID], nil
	}
	return 0, nil
}

// counts reports the grant rows activations loaded and the single rows looked up.
func (s *memStore) counts() (grantRowsLoaded, lookups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantRowsLoaded, s.lookups
}

func (s *memStore) SavePromo(ctx context.Context, expectedVersion int64, state []byte, l promo.Listing, grants promo.GrantsChange, events []outbox.Event) error {
	activated := false
	for _, e := range events {
		if e.RoutingKey != outbox.PromoActivated || e.ID != outbox.ID(outbox.PromoActivated, l.ID) {
			s.mu.Lock()
			s.anomalies = append(s.anomalies, fmt.Sprintf("write of %s carries an unexpected event %+v", l.ID, e))
			s.mu.Unlock()
		}
		activated = true
	}
	time.Sleep(s.saveDelay)
	if gate := s.gate.Load(); gate != nil {
		select {
		case s.started <- struct{}{}:
		default:
		}
		<-*gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		s.expired = append(s.expired, fmt.Sprintf("v%d: %v", expectedVersion+1, err))
		return err
	}
	p, ok := s.promos[l.ID]
	var stored int64
	if ok {
		stored = p.version
	}
	if stored != expectedVersion {
		return snapshot.ErrStale
	}
	ledger, customers := map[string]promo.Grant{}, map[string]int64{}
	if ok {
		maps.Copy(ledger, p.ledger)
		maps.Copy(customers, p.customers)
	}
	// Returned grants first, then added ones: an order may be returned and
	// granted again within one write.
	for _, order := range grants.Returned {
		if _, held := ledger[order]; !held {
			s.anomalies = append(s.anomalies, fmt.Sprintf("v%d returns %s, which holds no stored grant", expectedVersion+1, order))
		}
		delete(ledger, order)
	}
	for order, g := range grants.Added {
		if _, held := ledger[order]; held {
			// A primary key on (promo, order): the transaction fails as a whole.
			return fmt.Errorf("memstore: promo %s order %s: duplicate grant", l.ID, order)
		}
		ledger[order] = g
	}
	maps.Copy(customers, grants.Customers)
	l.Brands, l.SKUs = slices.Clone(l.Brands), slices.Clone(l.SKUs)
	s.promos[l.ID] = &storedPromo{version: expectedVersion + 1, state: slices.Clone(state), listing: l,
		grants: units(ledger), ledger: ledger, customers: customers}
	s.saves = append(s.saves, savedWrite{id: l.ID, expected: expectedVersion, stage: l.Stage, activated: activated,
		grants: promo.GrantsChange{Added: maps.Clone(grants.Added), Returned: slices.Clone(grants.Returned),
			Customers: maps.Clone(grants.Customers)}})
	return nil
}

// units is the units of each grant.
func units(grants map[string]promo.Grant) map[string]int64 {
	out := make(map[string]int64, len(grants))
	for order, g := range grants {
		out[order] = g.Units
	}
	return out
}

// holdSaves makes saves wait until the returned release is called.
func (s *memStore) holdSaves() (release func()) {
	gate := make(chan struct{})
	s.gate.Store(&gate)
	return func() {
		s.gate.Store(nil)
		close(gate)
	}
}

// moveOn is another activation of id writing a newer version behind the grain's
// back: it granted units to order.
func (s *memStore) moveOn(t *testing.T, id, order string, units int64) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.promos[id]
	if !ok {
		t.Fatalf("moveOn: promo %s was never saved", id)
	}
	p.version++
	p.ledger[order] = promo.Grant{Units: units, At: time.Now()}
	p.grants[order] = units
	p.listing.DiscountedUnits += units
	p.listing.Orders++
	// The snapshot keeps the counters: the other activation wrote them too.
	var st promopb.PromoState
	if err := proto.Unmarshal(p.state, &st); err != nil {
		t.Fatal(err)
	}
	st.DiscountedUnits, st.Orders = p.listing.DiscountedUnits, p.listing.Orders
	state, err := proto.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	p.state = state
}

func (s *memStore) stored(id string) (storedPromo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.promos[id]
	if !ok {
		return storedPromo{}, false
	}
	out := *p
	out.grants, out.ledger, out.customers = maps.Clone(p.grants), maps.Clone(p.ledger), maps.Clone(p.customers)
	return out, true
}

func (s *memStore) writes() []savedWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saves)
}

func (s *memStore) loadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// promoMember is one in-memory cluster member hosting promo grains on a memStore.
type promoMember struct {
	m     *member.Member
	c     *cluster.Cluster
	store *memStore
}

// startPromoMember starts a fresh actor system with the promo kind on store; it
// stops when the test ends.
func startPromoMember(t *testing.T, store *memStore, groupCommit bool) *promoMember {
	t.Helper()
	log := shoptest.Logger()
	m, err := member.StartMember(member.Config{Host: "127.0.0.1", NewProvider: member.NewInMemoryProvider(member.NewInMemoryAgent()),
		IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, Logger: log},
		member.Deps{Promo: promo.Deps{Store: store, Now: time.Now, StoreTimeout: 5 * time.Second, GroupCommit: groupCommit, Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &promoMember{m: m, c: m.Cluster(), store: store}
}

func (pm *promoMember) client(id string) *promopb.PromoGrainClient {
	return promopb.GetPromoGrainClient(pm.c, id)
}

// stopGrain poisons the activation of id and waits until the cluster forgot it, so
// the next call activates it again from the store.
func (pm *promoMember) stopGrain(t *testing.T, id string) {
	t.Helper()
	pid := pm.c.Get(id, promo.KindName)
	if pid == nil {
		t.Fatalf("no activation of %s", id)
	}
	if err := pm.m.System().Root.PoisonFuture(pid).Wait(); err != nil {
		t.Fatalf("poison %s: %v", id, err)
	}
	waitFor(t, 2*time.Second, "the activation to be gone", func() bool {
		return pm.c.GetClusterKind(promo.KindName).Count() == 0
	})
}

// callOpt is built fresh for each call (see PROTOACTOR.md on shared defaults).
func callOpt() cluster.GrainCallOption { return cluster.WithTimeout(5 * time.Second) }

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// campaignSpec is a valid spec running from start to end, capped at units (0: no cap).
func campaignSpec(start, end time.Time, units int64) *promopb.PromoSpec {
	return &promopb.PromoSpec{Name: "Spring sale", PercentOff: 15, Brands: []string{"Acme"}, Skus: []string{"sku-1"},
		StartsAt: timestamppb.New(start), EndsAt: timestamppb.New(end), MaxDiscountedUnits: units,
		EmailSubject: "Spring!", EmailBody: "15% off"}
}

// running creates and launches a campaign that is active now, capped at units.
func running(t *testing.T, cl *promopb.PromoGrainClient, units int64) {
	t.Helper()
	now := time.Now()
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(time.Hour), units)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	v, err := cl.Launch(&promopb.PromoCommand{}, callOpt())
	if err != nil || v.Status != string(promo.StatusActive) {
		t.Fatalf("launch = %v, %v; want active", v, err)
	}
}

func get(t *testing.T, cl *promopb.PromoGrainClient) *promopb.PromoView {
	t.Helper()
	v, err := cl.Get(&promopb.GetPromoRequest{}, callOpt())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return v
}

func TestCreateThenGetShowsADraftWithTheSpecNormalized(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	berlin := time.FixedZone("CEST", 2*3600)
	start := time.Now().Add(time.Hour).In(berlin).Truncate(time.Second)
	end := start.Add(24 * time.Hour)
	spec := campaignSpec(start, end, 100)
	spec.Name = "  Spring sale  "
	spec.Brands = []string{"Zeta", " Acme", "Acme", "Zeta"}
	spec.Skus = []string{"sku-2", "sku-1", "sku-2"}

	created, err := cl.Create(&promopb.CreatePromoRequest{Spec: spec}, callOpt())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	got := get(t, cl)
	if diff := cmp.Diff(created, got, protocmp.Transform()); diff != "" {
		t.Errorf("get differs from the create's answer (-create +get):\n%s", diff)
	}
	want := &promopb.PromoSpec{Name: "Spring sale", PercentOff: 15, Brands: []string{"Acme", "Zeta"}, Skus: []string{"sku-1", "sku-2"},
		StartsAt: timestamppb.New(start), EndsAt: timestamppb.New(end), MaxDiscountedUnits: 100,
		EmailSubject: "Spring!", EmailBody: "15% off"}
	if diff := cmp.Diff(want, got.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if got.Id != "promo-1" || got.Status != string(promo.StatusDraft) || got.DiscountedUnits != 0 || got.Orders != 0 {
		t.Errorf("view = %v; want promo-1, a draft with no grants", got)
	}
	if got.CreatedAt.AsTime().IsZero() {
		t.Errorf("created_at is not set")
	}

	p, ok := store.stored("promo-1")
	if !ok || p.version != 1 {
		t.Fatalf("stored = v%d, %v; want v1", p.version, ok)
	}
	l := p.listing
	if l.Stage != "draft" || l.Name != "Spring sale" || !slices.Equal(l.Brands, []string{"Acme", "Zeta"}) || !slices.Equal(l.SKUs, []string{"sku-1", "sku-2"}) {
		t.Errorf("stored listing = %+v; want the normalized draft", l)
	}
	if l.StartsAt.Location() != time.UTC || l.EndsAt.Location() != time.UTC || !l.StartsAt.Equal(start) || !l.EndsAt.Equal(end) {
		t.Errorf("stored times = %v, %v; want %v, %v in UTC", l.StartsAt, l.EndsAt, start.UTC(), end.UTC())
	}
}

func TestCreateRetriedWithTheSameSpecIsTheSameCampaignAndWithAnotherIsConflict(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	spec := campaignSpec(now.Add(time.Hour), now.Add(2*time.Hour), 10)
	spec.Brands = []string{"Zeta", "Acme"}

	first, err := cl.Create(&promopb.CreatePromoRequest{Spec: spec}, callOpt())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	again, err := cl.Create(&promopb.CreatePromoRequest{Spec: spec}, callOpt())
	if err != nil {
		t.Fatalf("retried create: %v", err)
	}
	if diff := cmp.Diff(first, again, protocmp.Transform()); diff != "" {
		t.Errorf("retried create answered another campaign (-first +retry):\n%s", diff)
	}
	if n := len(store.writes()); n != 1 {
		t.Errorf("%d writes; want 1 (a retry writes nothing)", n)
	}

	other := campaignSpec(now.Add(time.Hour), now.Add(2*time.Hour), 10)
	other.PercentOff = 20
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: other}, callOpt()); !reasonpb.IsConflict(err) {
		t.Errorf("create with another spec = %v; want CONFLICT", err)
	}
	if got := get(t, cl); got.Spec.PercentOff != 15 {
		t.Errorf("after the refused create, percent_off = %d; want 15", got.Spec.PercentOff)
	}
}

func TestCreateOfAnInvalidSpecIsInvalid(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	now := time.Now()
	spec := campaignSpec(now.Add(time.Hour), now.Add(2*time.Hour), 0)
	spec.PercentOff = 95
	if _, err := pm.client("promo-1").Create(&promopb.CreatePromoRequest{Spec: spec}, callOpt()); !reasonpb.IsInvalid(err) {
		t.Errorf("create at 95%% off = %v; want INVALID", err)
	}
	if _, err := pm.client("promo-1").Get(&promopb.GetPromoRequest{}, callOpt()); !reasonpb.IsNotFound(err) {
		t.Errorf("get after the refused create = %v; want NOT_FOUND", err)
	}
	if n := len(store.writes()); n != 0 {
		t.Errorf("%d writes; want none", n)
	}
}

func TestGetAndLaunchOfAnUnknownCampaignAreNotFound(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("nobody")
	if _, err := cl.Get(&promopb.GetPromoRequest{}, callOpt()); !reasonpb.IsNotFound(err) {
		t.Errorf("get = %v; want NOT_FOUND", err)
	}
	if _, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); !reasonpb.IsNotFound(err) {
		t.Errorf("launch = %v; want NOT_FOUND", err)
	}
	if _, err := cl.Edit(&promopb.EditPromoRequest{Patch: &promopb.PromoPatch{Fields: []string{"name"}, Spec: &promopb.PromoSpec{Name: "x"}}}, callOpt()); !reasonpb.IsNotFound(err) {
		t.Errorf("edit = %v; want NOT_FOUND", err)
	}
	if _, ok := store.stored("nobody"); ok || len(store.writes()) != 0 {
		t.Errorf("an unknown campaign was written")
	}
}

func TestEditChangesOnlyTheNamedFields(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	start, end := now.Add(time.Hour), now.Add(2*time.Hour)
	created, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(start, end, 10)}, callOpt())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	// The patch's spec carries other values for fields it does not name.
	patch := &promopb.PromoPatch{Fields: []string{"name", "percent_off", "brands"}, Spec: &promopb.PromoSpec{
		Name: " Summer sale ", PercentOff: 30, Brands: []string{"Zeta", "Beta", "Zeta"}, Skus: []string{"sku-9"},
		EndsAt: timestamppb.New(end.Add(time.Hour)), MaxDiscountedUnits: 99, EmailSubject: "other"}}
	edited, err := cl.Edit(&promopb.EditPromoRequest{Patch: patch}, callOpt())
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	want := created.Spec
	want.Name, want.PercentOff, want.Brands = "Summer sale", 30, []string{"Beta", "Zeta"}
	if diff := cmp.Diff(want, edited.Spec, protocmp.Transform()); diff != "" {
		t.Errorf("edited spec (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, get(t, cl).Spec, protocmp.Transform()); diff != "" {
		t.Errorf("spec read after the edit (-want +got):\n%s", diff)
	}
	if l, _ := store.stored("promo-1"); l.listing.Name != "Summer sale" || l.listing.PercentOff != 30 || l.version != 2 {
		t.Errorf("stored = v%d %+v; want v2 with the edit", l.version, l.listing)
	}
}

func TestEditRefusals(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(time.Hour), 10)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	tests := []struct {
		name   string
		patch  *promopb.PromoPatch
		launch bool
		is     func(error) bool
	}{
		{"unknown_field_is_invalid", &promopb.PromoPatch{Fields: []string{"name", "colour"}, Spec: &promopb.PromoSpec{Name: "New"}}, false, reasonpb.IsInvalid},
		{"invalid_value_is_invalid", &promopb.PromoPatch{Fields: []string{"percent_off"}, Spec: &promopb.PromoSpec{PercentOff: 95}}, false, reasonpb.IsInvalid},
		{"edit_after_launch_is_conflict", &promopb.PromoPatch{Fields: []string{"name"}, Spec: &promopb.PromoSpec{Name: "New"}}, true, reasonpb.IsConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.launch {
				if _, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil {
					t.Fatalf("launch: %v", err)
				}
			}
			before := get(t, cl).Spec
			if _, err := cl.Edit(&promopb.EditPromoRequest{Patch: tt.patch}, callOpt()); !tt.is(err) {
				t.Fatalf("edit = %v; want the refusal", err)
			}
			if diff := cmp.Diff(before, get(t, cl).Spec, protocmp.Transform()); diff != "" {
				t.Errorf("a refused edit changed the spec (-before +after):\n%s", diff)
			}
		})
	}
}

func TestLaunchBeforeStartIsScheduledAndWritesNoActivation(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(time.Hour), now.Add(2*time.Hour), 10)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	v, err := cl.Launch(&promopb.PromoCommand{}, callOpt())
	if err != nil || v.Status != string(promo.StatusScheduled) {
		t.Fatalf("launch = %v, %v; want scheduled", v, err)
	}
	for _, w := range store.writes() {
		if w.activated {
			t.Errorf("write v%d carries activated before the start", w.expected+1)
		}
	}
	if p, _ := store.stored("promo-1"); p.listing.Stage != "launched" || p.listing.Activated {
		t.Errorf("stored listing = stage %q activated %v; want launched, not activated", p.listing.Stage, p.listing.Activated)
	}
}

func TestLaunchAfterStartIsActiveAndWritesTheActivationExactlyOnce(t *testing.T) {
	for _, groupCommit := range []bool{false, true} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			store := newMemStore(t)
			pm := startPromoMember(t, store, groupCommit)
			cl := pm.client("promo-1")
			now := time.Now()
			if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(time.Hour), 10)}, callOpt()); err != nil {
				t.Fatalf("create: %v", err)
			}
			steps := []struct {
				name string
				call func(*promopb.PromoCommand, ...cluster.GrainCallOption) (*promopb.PromoView, error)
				want promo.Status
			}{
				{"launch", cl.Launch, promo.StatusActive},
				{"pause", cl.Pause, promo.StatusPaused},
				{"launch_again", cl.Launch, promo.StatusActive},
			}
			for _, s := range steps {
				v, err := s.call(&promopb.PromoCommand{}, callOpt())
				if err != nil || v.Status != string(s.want) {
					t.Fatalf("%s = %v, %v; want %s", s.name, v, err, s.want)
				}
			}
			var activations []int64
			for _, w := range store.writes() {
				if w.activated {
					activations = append(activations, w.expected+1)
				}
			}
			if len(activations) != 1 || activations[0] != 2 {
				t.Errorf("writes carrying activated: %v; want exactly the launch's, v2 (writes: %+v)", activations, store.writes())
			}
			if p, _ := store.stored("promo-1"); !p.listing.Activated || p.version != 4 {
				t.Errorf("stored = v%d activated %v; want v4 (create, launch, pause, launch), activated", p.version, p.listing.Activated)
			}
		})
	}
}

func TestPauseAndEndMoveTheCampaignAndRefuseWhatTheyMayNot(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(time.Hour), 10)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	type step struct {
		name string
		call func(*promopb.PromoCommand, ...cluster.GrainCallOption) (*promopb.PromoView, error)
		want promo.Status // "" : refused with CONFLICT
	}
	steps := []step{
		{"pause_a_draft_is_conflict", cl.Pause, ""},
		{"launch", cl.Launch, promo.StatusActive},
		{"pause", cl.Pause, promo.StatusPaused},
		{"pause_again_changes_nothing", cl.Pause, promo.StatusPaused},
		{"launch_a_paused", cl.Launch, promo.StatusActive},
		{"launch_again_changes_nothing", cl.Launch, promo.StatusActive},
		{"end", cl.End, promo.StatusEnded},
		{"end_again_changes_nothing", cl.End, promo.StatusEnded},
		{"launch_an_ended_is_conflict", cl.Launch, ""},
		{"pause_an_ended_is_conflict", cl.Pause, ""},
	}
	for _, s := range steps {
		before := len(store.writes())
		v, err := s.call(&promopb.PromoCommand{}, callOpt())
		switch {
		case s.want == "" && !reasonpb.IsConflict(err):
			t.Errorf("%s = %v, %v; want CONFLICT", s.name, v, err)
		case s.want != "" && (err != nil || v.Status != string(s.want)):
			t.Errorf("%s = %v, %v; want %s", s.name, v, err, s.want)
		}
		wrote := len(store.writes()) > before
		if changes := s.want != "" && !slices.Contains([]string{"pause_again_changes_nothing", "launch_again_changes_nothing", "end_again_changes_nothing"}, s.name); wrote != changes {
			t.Errorf("%s: wrote %v; want %v", s.name, wrote, changes)
		}
	}
	if p, _ := store.stored("promo-1"); p.listing.Stage != "ended" {
		t.Errorf("stored stage = %q; want ended", p.listing.Stage)
	}
}

func TestGrantIsAllOrNothingAndIdempotentPerOrder(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	running(t, cl, 5)

	r, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 3}, callOpt())
	if err != nil || r.Remaining != 2 {
		t.Fatalf("grant o1 3 = %v, %v; want 2 remaining", r, err)
	}
	writes := len(store.writes())
	if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 3}, callOpt()); !reasonpb.IsPriceChanged(err) {
		t.Errorf("grant of 3 with 2 left = %v; want PRICE_CHANGED", err)
	}
	if v := get(t, cl); v.DiscountedUnits != 3 || v.Orders != 1 {
		t.Errorf("after the refused grant: %d units, %d orders; want 3 and 1", v.DiscountedUnits, v.Orders)
	}
	if p, _ := store.stored("promo-1"); len(store.writes()) != writes || !maps.Equal(p.grants, map[string]int64{"o1": 3}) {
		t.Errorf("after the refused grant the store holds %v (%d writes, was %d); want o1:3 alone, nothing written", p.grants, len(store.writes()), writes)
	}

	r, err = cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 3}, callOpt())
	if err != nil || r.Remaining != 2 {
		t.Errorf("repeated grant o1 3 = %v, %v; want success, 2 remaining", r, err)
	}
	if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 2}, callOpt()); !reasonpb.IsIdempotencyMismatch(err) {
		t.Errorf("grant o1 2 after o1 3 = %v; want IDEMPOTENCY_MISMATCH", err)
	}
	if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o3", Units: 0}, callOpt()); !reasonpb.IsInvalid(err) {
		t.Errorf("grant of 0 units = %v; want INVALID", err)
	}
	if v := get(t, cl); v.DiscountedUnits != 3 || v.Orders != 1 {
		t.Errorf("after the repeats: %d units, %d orders; want 3 and 1", v.DiscountedUnits, v.Orders)
	}
	if len(store.writes()) != writes {
		t.Errorf("repeated and refused grants wrote %d times; want none", len(store.writes())-writes)
	}
	r, err = cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 2}, callOpt())
	if err != nil || r.Remaining != 0 {
		t.Errorf("grant o2 2 = %v, %v; want the last 2 units", r, err)
	}
	if p, _ := store.stored("promo-1"); !maps.Equal(p.grants, map[string]int64{"o1": 3, "o2": 2}) || p.listing.DiscountedUnits != 5 || p.listing.Orders != 2 {
		t.Errorf("stored = %v, listing %d units %d orders; want o1:3 o2:2, 5 units, 2 orders", p.grants, p.listing.DiscountedUnits, p.listing.Orders)
	}
}

func TestGrantOnACampaignThatIsNotActiveIsPriceChanged(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, cl *promopb.PromoGrainClient)
	}{
		{"unknown", func(*testing.T, *promopb.PromoGrainClient) {}},
		{"draft", func(t *testing.T, cl *promopb.PromoGrainClient) {
			if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(time.Hour), 10)}, callOpt()); err != nil {
				t.Fatal(err)
			}
		}},
		{"scheduled", func(t *testing.T, cl *promopb.PromoGrainClient) {
			if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(time.Hour), now.Add(2*time.Hour), 10)}, callOpt()); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil {
				t.Fatal(err)
			}
		}},
		{"paused", func(t *testing.T, cl *promopb.PromoGrainClient) {
			running(t, cl, 10)
			if _, err := cl.Pause(&promopb.PromoCommand{}, callOpt()); err != nil {
				t.Fatal(err)
			}
		}},
		{"ended", func(t *testing.T, cl *promopb.PromoGrainClient) {
			running(t, cl, 10)
			if _, err := cl.End(&promopb.PromoCommand{}, callOpt()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore(t)
			pm := startPromoMember(t, store, false)
			cl := pm.client("promo-1")
			tt.setup(t, cl)
			if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 1}, callOpt()); !reasonpb.IsPriceChanged(err) {
				t.Errorf("grant = %v; want PRICE_CHANGED", err)
			}
			if p, _ := store.stored("promo-1"); len(p.grants) != 0 {
				t.Errorf("stored grants = %v; want none", p.grants)
			}
		})
	}
}

func TestReturnGivesTheUnitsBackAndIsANoOpTheSecondTime(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	running(t, cl, 5)
	for _, g := range []*promopb.GrantRequest{{OrderId: "o1", Units: 2}, {OrderId: "o2", Units: 1}} {
		if _, err := cl.Grant(g, callOpt()); err != nil {
			t.Fatalf("grant %v: %v", g, err)
		}
	}
	r, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt())
	if err != nil || r.Remaining != 4 {
		t.Fatalf("return o1 = %v, %v; want 4 remaining", r, err)
	}
	writes := store.writes()
	if last := writes[len(writes)-1]; !slices.Equal(last.grants.Returned, []string{"o1"}) || len(last.grants.Added) != 0 {
		t.Errorf("the return's write carries %+v; want o1 returned, nothing added", last.grants)
	}
	r, err = cl.Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt())
	if err != nil || r.Remaining != 4 {
		t.Errorf("second return of o1 = %v, %v; want 4 remaining", r, err)
	}
	if n := len(store.writes()); n != len(writes) {
		t.Errorf("the second return wrote %d times; want none", n-len(writes))
	}
	if v := get(t, cl); v.DiscountedUnits != 1 || v.Orders != 1 {
		t.Errorf("after the returns: %d units, %d orders; want 1 and 1", v.DiscountedUnits, v.Orders)
	}
	if p, _ := store.stored("promo-1"); !maps.Equal(p.grants, map[string]int64{"o2": 1}) {
		t.Errorf("stored grants = %v; want o2:1", p.grants)
	}
	// The order may be granted again after its return.
	if r, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 3}, callOpt()); err != nil || r.Remaining != 1 {
		t.Errorf("grant o1 3 after its return = %v, %v; want 1 remaining", r, err)
	}
	if r, err := pm.client("nobody").Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt()); err != nil || r.Remaining != -1 {
		t.Errorf("return on an unknown campaign = %v, %v; want a no-op", r, err)
	}
}

// TestReturnAndGrantAgainInOneWriteKeepTheLedgerRight: with group commit, a return
// and a new grant of the same order made while a write is in flight share the next
// write, which must delete the old grant before inserting the new one.
func TestReturnAndGrantAgainInOneWriteKeepTheLedgerRight(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, true)
	cl := pm.client("promo-1")
	running(t, cl, 10)
	if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 1}, callOpt()); err != nil {
		t.Fatalf("grant o1 1: %v", err)
	}

	release := store.holdSaves()
	defer func() {
		if release != nil {
			release()
		}
	}()
	steps := []struct {
		name string
		call func() error
	}{
		{"grant o2 1", func() error {
			_, err := cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 1}, callOpt())
			return err
		}},
		{"return o1", func() error {
			_, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt())
			return err
		}},
		{"grant o1 2", func() error {
			_, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 2}, callOpt())
			return err
		}},
	}
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.call()
		}()
		if i == 0 {
			select { // the first write is in flight: what follows waits behind it
			case <-store.started:
			case <-time.After(2 * time.Second):
				t.Fatal("the grant's write did not start")
			}
		} else {
			time.Sleep(30 * time.Millisecond) // keep the order of the commands
		}
	}
	release()
	release = nil
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", steps[i].name, err)
		}
	}
	p, _ := store.stored("promo-1")
	if !maps.Equal(p.grants, map[string]int64{"o1": 2, "o2": 1}) || p.listing.DiscountedUnits != 3 || p.listing.Orders != 2 {
		t.Errorf("stored = %v, listing %d units %d orders; want o1:2 o2:1, 3 units, 2 orders", p.grants, p.listing.DiscountedUnits, p.listing.Orders)
	}
	writes := store.writes()
	last := writes[len(writes)-1]
	if !slices.Equal(last.grants.Returned, []string{"o1"}) || !maps.Equal(units(last.grants.Added), map[string]int64{"o1": 2}) {
		t.Errorf("the last write carries %+v; want o1 returned and o1:2 added in one write", last.grants)
	}
}

func TestConcurrentGrantsNeverExceedTheCap(t *testing.T) {
	for _, groupCommit := range []bool{false, true} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			store := newMemStore(t)
			store.saveDelay = 2 * time.Millisecond
			pm := startPromoMember(t, store, groupCommit)
			cl := pm.client("promo-hot")
			running(t, cl, 20)

			var wg sync.WaitGroup
			var granted, refused atomic.Int64
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := cl.Grant(&promopb.GrantRequest{OrderId: fmt.Sprintf("o%02d", i), Units: 1}, callOpt())
					switch {
					case err == nil:
						granted.Add(1)
					case reasonpb.IsPriceChanged(err):
						refused.Add(1)
					default:
						t.Errorf("grant o%02d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			if granted.Load() != 20 || refused.Load() != 30 {
				t.Errorf("%d granted, %d refused; want 20 and 30", granted.Load(), refused.Load())
			}
			if v := get(t, cl); v.DiscountedUnits != 20 || v.Orders != 20 {
				t.Errorf("view: %d units, %d orders; want 20 and 20", v.DiscountedUnits, v.Orders)
			}
			p, _ := store.stored("promo-hot")
			if len(p.grants) != 20 || p.listing.DiscountedUnits != 20 || p.listing.Orders != 20 {
				t.Errorf("stored: %d grants, listing %d units %d orders; want 20 each", len(p.grants), p.listing.DiscountedUnits, p.listing.Orders)
			}
			t.Logf("%d writes for 20 grants", len(store.writes())-2)
		})
	}
}

func TestCampaignAndGrantsSurviveReactivation(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, true)
	cl := pm.client("promo-1")
	running(t, cl, 10)
	for _, g := range []*promopb.GrantRequest{{OrderId: "o1", Units: 2}, {OrderId: "o2", Units: 3}, {OrderId: "o3", Units: 1}} {
		if _, err := cl.Grant(g, callOpt()); err != nil {
			t.Fatalf("grant %v: %v", g, err)
		}
	}
	if _, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o3"}, callOpt()); err != nil {
		t.Fatalf("return: %v", err)
	}
	before := get(t, cl)
	loads := store.loadCount()

	pm.stopGrain(t, "promo-1")

	after := get(t, cl)
	if store.loadCount() == loads {
		t.Fatalf("the grain was not loaded again after its stop")
	}
	if diff := cmp.Diff(before, after, protocmp.Transform()); diff != "" {
		t.Errorf("view after reactivation (-before +after):\n%s", diff)
	}
	// The reloaded grain knows who holds what.
	if r, err := cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 3}, callOpt()); err != nil || r.Remaining != 5 {
		t.Errorf("repeated grant o2 3 = %v, %v; want success with 5 remaining", r, err)
	}
	if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 1}, callOpt()); !reasonpb.IsIdempotencyMismatch(err) {
		t.Errorf("grant o1 1 after o1 2 = %v; want IDEMPOTENCY_MISMATCH", err)
	}
	if r, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o1"}, callOpt()); err != nil || r.Remaining != 7 {
		t.Errorf("return o1 = %v, %v; want 7 remaining", r, err)
	}
	if r, err := cl.Return(&promopb.ReturnGrantRequest{OrderId: "o3"}, callOpt()); err != nil || r.Remaining != 7 {
		t.Errorf("return of o3, returned before the stop = %v, %v; want a no-op, 7 remaining", r, err)
	}
	if p, _ := store.stored("promo-1"); !maps.Equal(p.grants, map[string]int64{"o2": 3}) {
		t.Errorf("stored grants = %v; want o2:3", p.grants)
	}
	// It also knows the campaign was activated already: no second activation.
	writesBefore := len(store.writes())
	for _, move := range []func(*promopb.PromoCommand, ...cluster.GrainCallOption) (*promopb.PromoView, error){cl.Pause, cl.Launch} {
		if _, err := move(&promopb.PromoCommand{}, callOpt()); err != nil {
			t.Fatalf("pause or launch after reactivation: %v", err)
		}
	}
	for _, w := range store.writes()[writesBefore:] {
		if w.activated {
			t.Errorf("write v%d after reactivation carries activated again", w.expected+1)
		}
	}
}

func TestFencedOffWriteIsUnavailableAndTheGrainReloads(t *testing.T) {
	for _, groupCommit := range []bool{false, true} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			store := newMemStore(t)
			pm := startPromoMember(t, store, groupCommit)
			cl := pm.client("promo-1")
			running(t, cl, 10)
			if _, err := cl.Grant(&promopb.GrantRequest{OrderId: "o1", Units: 2}, callOpt()); err != nil {
				t.Fatalf("grant o1: %v", err)
			}
			store.moveOn(t, "promo-1", "elsewhere", 3)
			moved, _ := store.stored("promo-1")

			_, err := cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 1}, callOpt())
			// A fenced write is transient for grainerr: UNAVAILABLE, never success.
			if !reasonpb.IsUnavailable(err) {
				t.Fatalf("grant against a moved store = %v; want UNAVAILABLE", err)
			}
			if p, _ := store.stored("promo-1"); p.version != moved.version || !maps.Equal(p.grants, moved.grants) {
				t.Fatalf("the fenced write changed the store: v%d %v; want v%d %v", p.version, p.grants, moved.version, moved.grants)
			}

			v := get(t, cl)
			if v.DiscountedUnits != 5 || v.Orders != 2 {
				t.Errorf("after the fenced write: %d units, %d orders; want the newer state's 5 and 2", v.DiscountedUnits, v.Orders)
			}
			r, err := cl.Grant(&promopb.GrantRequest{OrderId: "o2", Units: 1}, callOpt())
			if err != nil || r.Remaining != 4 {
				t.Errorf("retried grant o2 = %v, %v; want 4 remaining", r, err)
			}
			if p, _ := store.stored("promo-1"); !maps.Equal(p.grants, map[string]int64{"o1": 2, "elsewhere": 3, "o2": 1}) || p.version != moved.version+1 {
				t.Errorf("stored = v%d %v; want v%d with o1, elsewhere and o2", p.version, p.grants, moved.version+1)
			}
		})
	}
}

func TestGrainTimerEndsACampaignAtItsEnd(t *testing.T) {
	for _, groupCommit := range []bool{false, true} {
		t.Run(fmt.Sprintf("group_commit_%v", groupCommit), func(t *testing.T) {
			store := newMemStore(t)
			pm := startPromoMember(t, store, groupCommit)
			cl := pm.client("promo-1")
			now := time.Now()
			if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), now.Add(300*time.Millisecond), 10)}, callOpt()); err != nil {
				t.Fatalf("create: %v", err)
			}
			if v, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil || v.Status != string(promo.StatusActive) {
				t.Fatalf("launch = %v, %v; want active", v, err)
			}
			waitFor(t, 2*time.Second, "the stored stage to become ended", func() bool {
				p, _ := store.stored("promo-1")
				return p.listing.Stage == "ended"
			})
			if p, _ := store.stored("promo-1"); p.version != 3 {
				t.Errorf("stored v%d; want v3 (create, launch, the timer's end)", p.version)
			}
		})
	}
}

func TestGrainTimerActivatesAScheduledCampaignAtItsStart(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, true)
	cl := pm.client("promo-1")
	now := time.Now()
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(300*time.Millisecond), now.Add(time.Hour), 10)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	if v, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil || v.Status != string(promo.StatusScheduled) {
		t.Fatalf("launch = %v, %v; want scheduled", v, err)
	}
	waitFor(t, 2*time.Second, "the activation to be written", func() bool {
		p, _ := store.stored("promo-1")
		return p.listing.Activated
	})
	var activations int
	for _, w := range store.writes() {
		if w.activated {
			activations++
		}
	}
	if activations != 1 {
		t.Errorf("%d writes carry activated; want 1", activations)
	}
}

// TestGrainTimerEndsACampaignOnTimeAfterAReadWithAShortDeadline: the timer's write
// is bounded by the store timeout alone, not by the deadline of an earlier command
// that wrote nothing.
func TestGrainTimerEndsACampaignOnTimeAfterAReadWithAShortDeadline(t *testing.T) {
	store := newMemStore(t)
	pm := startPromoMember(t, store, false)
	cl := pm.client("promo-1")
	now := time.Now()
	end := now.Add(300 * time.Millisecond)
	if _, err := cl.Create(&promopb.CreatePromoRequest{Spec: campaignSpec(now.Add(-time.Minute), end, 10)}, callOpt()); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := cl.Launch(&promopb.PromoCommand{}, callOpt()); err != nil {
		t.Fatalf("launch: %v", err)
	}
	// A reader that gives the grain 50 ms; it changes nothing, so nothing is written.
	if _, err := cl.Get(&promopb.GetPromoRequest{DeadlineUnixMs: time.Now().Add(50 * time.Millisecond).UnixMilli()}, callOpt()); err != nil {
		t.Fatalf("get: %v", err)
	}
	waitFor(t, time.Until(end)+500*time.Millisecond, "the stored stage to become ended soon after the end", func() bool {
		p, _ := store.stored("promo-1")
		return p.listing.Stage == "ended"
	})
}
