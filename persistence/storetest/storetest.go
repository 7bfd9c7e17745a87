// Package storetest is the contract every store adapter passes: the same suite runs
// against SQLite and against a real MariaDB/MySQL, so the SQL they share behaves
// alike on both (fencing, concurrency, duplicate keys, search, paging).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/account"
	"phoneshop/actors/cart"
	"phoneshop/actors/inventory"
	"phoneshop/actors/order"
	"phoneshop/actors/snapshot"
	"phoneshop/catalog"
	"phoneshop/fault"
	"phoneshop/persistence/sqlstore"
)

// Open returns a new, empty, migrated store for one test; the adapter's test closes
// and removes it at cleanup.
type Open func(t *testing.T) *sqlstore.Store

// Run runs the whole contract on stores that commit every write on its own, then
// the snapshot contract again with group commit on (fencing inside a batch).
func Run(t *testing.T, open Open) {
	t.Run("snapshots", func(t *testing.T) { Snapshots(t, open) })
	t.Run("snapshots_group_commit", func(t *testing.T) {
		Snapshots(t, func(t *testing.T) *sqlstore.Store {
			s := open(t)
			s.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: 64, Committers: committers(s)})
			return s
		})
	})
	t.Run("batches", func(t *testing.T) { Batches(t, open) })
	t.Run("accounts", func(t *testing.T) { Accounts(t, open) })
	t.Run("admins_demoting_each_other_leave_one", func(t *testing.T) { LastAdmin(t, open) })
	t.Run("verification", func(t *testing.T) { Verification(t, open) })
	t.Run("catalog", func(t *testing.T) { Catalog(t, open) })
	t.Run("catalog_seeded_once_by_racing_processes", func(t *testing.T) { SeedRace(t, open) })
	t.Run("orders", func(t *testing.T) { Orders(t, open) })
	t.Run("promos", func(t *testing.T) { Promos(t, open) })
	t.Run("ledgers", func(t *testing.T) { Ledgers(t, open) })
	t.Run("orders_born_in_their_sale", func(t *testing.T) { Births(t, open) })
	t.Run("outbox", func(t *testing.T) { Outbox(t, open) })
	t.Run("outbox_claims", func(t *testing.T) { OutboxClaims(t, open) })
	t.Run("outbox_growth", func(t *testing.T) { OutboxGrowth(t, open) })
	t.Run("mail", func(t *testing.T) { Mail(t, open) })
	t.Run("outbox_group_commit", func(t *testing.T) {
		Outbox(t, func(t *testing.T) *sqlstore.Store {
			s := open(t)
			s.EnableGroupCommit(sqlstore.GroupCommit{MaxWrites: 64, Committers: committers(s)})
			return s
		})
	})
	t.Run("faults", func(t *testing.T) { Faults(t, open) })
	t.Run("expired_sessions_are_purged", func(t *testing.T) { expiredSessionsArePurged(t, open) })
}

// expiredSessionsArePurged: DeleteExpiredSessions deletes exactly the sessions
// that expired.
func expiredSessionsArePurged(t *testing.T, open Open) {
	s := open(t)
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateAccount(ctx, account.Account{ID: "acc_purge", Email: "purge@example.com", Name: "P",
		Roles: []account.Role{account.RoleShopper}, PasswordHash: "x", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for token, expires := range map[string]time.Time{"old": now.Add(-time.Hour), "older": now.Add(-48 * time.Hour), "live": now.Add(time.Hour)} {
		if err := s.CreateSession(ctx, account.Session{TokenHash: token, AccountID: "acc_purge", ExpiresAt: expires, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpiredSessions(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want the 2 expired", n, err)
	}
	if _, err := s.SessionByTokenHash(ctx, "live"); err != nil {
		t.Fatalf("the live session: %v", err)
	}
	if _, err := s.SessionByTokenHash(ctx, "old"); !errors.Is(err, account.ErrSessionNotFound) {
		t.Fatalf("an expired session is still there: %v", err)
	}
}

// Faults: a call the database cannot serve in time is fault.ErrUnavailable (the
// edge answers 503 and Retry-After), and a domain outcome stays what it is.
func Faults(t *testing.T, open Open) {
	s := open(t)
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	calls := map[string]func(ctx context.Context) error{
		"AccountByEmail": func(ctx context.Context) error { _, err := s.AccountByEmail(ctx, "a@example.com"); return err },
		"CreateSession": func(ctx context.Context) error {
			return s.CreateSession(ctx, account.Session{TokenHash: "t", AccountID: "a", ExpiresAt: time.Now(), CreatedAt: time.Now()})
		},
		"SessionByTokenHash": func(ctx context.Context) error { _, err := s.SessionByTokenHash(ctx, "t"); return err },
		"ListOrders":         func(ctx context.Context) error { _, err := s.ListOrders(ctx, "a", 10, nil); return err },
		"OrderByID":          func(ctx context.Context) error { _, err := s.OrderByID(ctx, "a"); return err },
		"LoadCart":           func(ctx context.Context) error { _, err := s.LoadCart(ctx, "a"); return err },
		"SaveCart":           func(ctx context.Context) error { return s.SaveCart(ctx, "a", 0, []byte("x")) },
		"Phone":              func(ctx context.Context) error { _, err := s.Phone(ctx, "p"); return err },
	}
	for name, call := range calls {
		t.Run(name+"_past_its_deadline_is_unavailable", func(t *testing.T) {
			if err := call(expired); !errors.Is(err, fault.ErrUnavailable) {
				t.Fatalf("%s past its deadline: %v; want fault.ErrUnavailable", name, err)
			}
		})
	}
	t.Run("not_found_stays_not_found", func(t *testing.T) {
		if _, err := s.AccountByEmail(context.Background(), "nobody@example.com"); !errors.Is(err, account.ErrNotFound) || errors.Is(err, fault.ErrUnavailable) {
			t.Fatalf("unknown account: %v; want account.ErrNotFound only", err)
		}
	})
}

// Snapshots: fenced saves, a race of writers, and two activations of one inventory
// grain racing on the same store.
func Snapshots(t *testing.T, open Open) {
	ctx := context.Background()

	t.Run("saves_are_fenced_on_the_loaded_version", func(t *testing.T) {
		s := open(t)
		steps := []struct {
			name     string
			expected int64
			wantErr  error
		}{
			{"first_save_from_version_0", 0, nil},
			{"second_insert_from_version_0_is_stale", 0, snapshot.ErrStale},
			{"save_from_version_1", 1, nil},
			{"save_from_version_1_again_is_stale", 1, snapshot.ErrStale},
			{"save_from_a_future_version_is_stale", 7, snapshot.ErrStale},
			{"save_from_version_2", 2, nil},
		}
		for i, st := range steps {
			err := s.SaveCart(ctx, "acc-1", st.expected, []byte(fmt.Sprint(i)))
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
			}
		}
		got, err := s.LoadCart(ctx, "acc-1")
		if err != nil || got.Version != 3 || string(got.State) != "5" {
			t.Fatalf("load = %+v, %v; want version 3 with the last accepted state", got, err)
		}
		if none, err := s.LoadCart(ctx, "acc-unknown"); err != nil || none.Version != 0 || len(none.State) != 0 {
			t.Fatalf("load of a never-saved identity = %+v, %v", none, err)
		}
	})

	t.Run("kinds_do_not_share_identities", func(t *testing.T) {
		s := open(t)
		if err := s.SaveCart(ctx, "x", 0, []byte("cart")); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveInventory(ctx, "x", 0, []byte("inventory"), inventory.Level{}, inventory.LedgerChange{}); err != nil {
			t.Fatalf("inventory x after cart x: %v", err)
		}
		if got, _ := s.LoadInventory(ctx, "x"); string(got.State) != "inventory" {
			t.Fatalf("inventory x = %q", got.State)
		}
	})

	t.Run("twenty_writers_racing_lose_no_update", func(t *testing.T) {
		s := open(t)
		const writers, each = 20, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for {
						cur, err := s.LoadCart(ctx, "counter")
						if err != nil {
							errs <- err
							return
						}
						n := 0
						if len(cur.State) > 0 {
							_ = json.Unmarshal(cur.State, &n)
						}
						next, _ := json.Marshal(n + 1)
						err = s.SaveCart(ctx, "counter", cur.Version, next)
						if errors.Is(err, snapshot.ErrStale) {
							continue // another writer moved on: reload and retry
						}
						if err != nil {
							errs <- fmt.Errorf("writer %d: %w", w, err)
							return
						}
						break
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, err := s.LoadCart(ctx, "counter")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		_ = json.Unmarshal(got.State, &n)
		if n != writers*each || got.Version != writers*each {
			t.Fatalf("counter = %d at version %d, want %d at %d", n, got.Version, writers*each, writers*each)
		}
	})

	t.Run("two_activations_racing_sell_each_unit_once", func(t *testing.T) {
		// Two activations of one inventory grain (what protoactor's best-effort
		// placement allows during a hand-over) load the same version and each sell
		// the units to a different order. The store accepts exactly one of them.
		s := open(t)
		base := &inventory.Item{}
		if _, err := base.Receive("delivery", 5); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveInventory(ctx, "hot", 0, encodeItem(t, base), base.Level(), base.TakeChange()); err != nil {
			t.Fatal(err)
		}
		for round := range 20 {
			loaded, err := s.LoadInventory(ctx, "hot")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for a := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					it := decodeItem(loaded.State)
					order := fmt.Sprintf("round%d-activation%d", round, a)
					if _, err := it.Receive(order+"-restock", 5); err != nil {
						errs[a] = err
						return
					}
					if _, err := it.Reserve(order, 5, time.Now(), time.Minute); err != nil {
						errs[a] = err
						return
					}
					if _, err := it.Commit(order, time.Now()); err != nil {
						errs[a] = err
						return
					}
					errs[a] = s.SaveInventory(ctx, "hot", loaded.Version, encodeItem(t, it), it.Level(), it.TakeChange())
				}()
			}
			wg.Wait()
			won, stale := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case errors.Is(err, snapshot.ErrStale):
					stale++
				default:
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if won != 1 || stale != 1 {
				t.Fatalf("round %d: %d saves won and %d were fenced off; want exactly one each", round, won, stale)
			}
		}
		final, err := s.LoadInventory(ctx, "hot")
		if err != nil {
			t.Fatal(err)
		}
		it := decodeItem(final.State)
		if l := it.Level(); l.Sold != 100 || l.Received != 105 || it.Check() != nil {
			t.Fatalf("after 20 rounds: %+v (check %v); want 100 sold of 105 received, one sale per round", l, it.Check())
		}
		// The ledger is fenced with the snapshot: only the winners' sales are in it.
		ledger, err := saleUnits(ctx, s, "hot")
		if err != nil {
			t.Fatal(err)
		}
		var units int64
		for _, q := range ledger {
			units += q
		}
		if len(ledger) != 20 || units != 100 {
			t.Fatalf("ledger holds %d sales of %d units, want 20 sales of 100", len(ledger), units)
		}
	})

	t.Run("a_write_adds_and_returns_only_its_own_sales", func(t *testing.T) {
		s := open(t)
		lv := inventory.Level{}
		steps := []struct {
			expected int64
			change   inventory.LedgerChange
			want     map[string]int64
		}{
			{0, inventory.LedgerChange{Added: soldAt(t0Ledger, map[string]int64{"o1": 2, "o2": 1})}, map[string]int64{"o1": 2, "o2": 1}},
			{1, inventory.LedgerChange{}, map[string]int64{"o1": 2, "o2": 1}},
			{2, inventory.LedgerChange{Added: soldAt(t0Ledger, map[string]int64{"o3": 4}), Returned: []string{"o1"}}, map[string]int64{"o2": 1, "o3": 4}},
			// Returned and sold again in one write: the return is applied first.
			{3, inventory.LedgerChange{Added: soldAt(t0Ledger, map[string]int64{"o2": 5}), Returned: []string{"o2"}}, map[string]int64{"o2": 5, "o3": 4}},
		}
		for i, st := range steps {
			if err := s.SaveInventory(ctx, "sku-ledger", st.expected, []byte("x"), lv, st.change); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got, err := saleUnits(ctx, s, "sku-ledger")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Fatalf("step %d ledger (-want +got):\n%s", i, diff)
			}
		}
		err := s.SaveInventory(ctx, "sku-ledger", 1, []byte("stale"), lv, inventory.LedgerChange{Added: soldAt(t0Ledger, map[string]int64{"o9": 9}), Returned: []string{"o3"}})
		if !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("stale save: err = %v, want ErrStale", err)
		}
		if got, _ := saleUnits(ctx, s, "sku-ledger"); !cmp.Equal(got, map[string]int64{"o2": 5, "o3": 4}) {
			t.Fatalf("a stale save changed the ledger: %v", got)
		}
	})

	t.Run("a_stale_inventory_save_leaves_the_stock_level_alone", func(t *testing.T) {
		s := open(t)
		if err := s.SaveInventory(ctx, "sku-l", 0, []byte("a"), inventory.Level{Available: 4, Received: 4}, inventory.LedgerChange{}); err != nil {
			t.Fatal(err)
		}
		err := s.SaveInventory(ctx, "sku-l", 0, []byte("b"), inventory.Level{Available: 99, Received: 99}, inventory.LedgerChange{})
		if !errors.Is(err, snapshot.ErrStale) {
			t.Fatalf("err = %v, want ErrStale", err)
		}
		seedOne(t, s, "sku-l")
		vs, err := s.VariantsBySKU(ctx, []string{"sku-l"})
		if err != nil || vs["sku-l"].Available != 4 {
			t.Fatalf("level = %+v, %v; want the accepted save's 4 available", vs["sku-l"], err)
		}
	})
}

// Accounts: duplicate e-mails, lookups, sessions.
func Accounts(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := account.Account{ID: "acc_1", Email: "a@example.com", Name: "Ann", Roles: []account.Role{account.RoleShopper, account.RoleOps},
		PasswordHash: "$argon2id$x", CreatedAt: now}
	if err := s.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	dup := a
	dup.ID = "acc_2"
	if err := s.CreateAccount(ctx, dup); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("duplicate email: err = %v, want ErrEmailTaken", err)
	}
	for _, get := range []func() (account.Account, error){
		func() (account.Account, error) { return s.AccountByEmail(ctx, "a@example.com") },
		func() (account.Account, error) { return s.AccountByID(ctx, "acc_1") },
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Fatalf("account (-want +got):\n%s", diff)
		}
	}
	if _, err := s.AccountByEmail(ctx, "nobody@example.com"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown email: err = %v, want ErrNotFound", err)
	}
	sess := account.Session{TokenHash: account.HashToken("tok"), AccountID: "acc_1", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByTokenHash(ctx, sess.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sess, got); diff != "" {
		t.Fatalf("session (-want +got):\n%s", diff)
	}
	if err := s.DeleteSession(ctx, sess.TokenHash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err, account.ErrSessionNotFound) {
		t.Fatalf("deleted session: err = %v, want ErrSessionNotFound", err)
	}
}

// LastAdmin: two admins who take each other's admin role away at once, again and
// again, never leave the store without an admin: one of the two changes lands, the
// other is refused with account.ErrLastAdmin.
func LastAdmin(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	admins := []account.Role{account.RoleShopper, account.RoleAdmin}
	for _, id := range []string{"acc_admin_a", "acc_admin_b"} {
		if err := s.CreateAccount(ctx, account.Account{ID: id, Email: id + "@example.com", Name: id, Roles: admins,
			PasswordHash: "$argon2id$x", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	setRoles := func(id string, roles []account.Role) error {
		_, err := s.UpdateAccount(ctx, id, func(a *account.Account) error { a.Roles = roles; return nil })
		return err
	}
	isAdmin := func(id string) bool {
		a, err := s.AccountByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(a.Roles, account.RoleAdmin)
	}
	for round := range 30 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{"acc_admin_a", "acc_admin_b"} {
			wg.Go(func() { errs[i] = setRoles(id, []account.Role{account.RoleShopper, account.RoleOps}) })
		}
		wg.Wait()
		a, b := isAdmin("acc_admin_a"), isAdmin("acc_admin_b")
		if !a && !b {
			t.Fatalf("round %d: both admins demoted (errors %v): the store has no admin", round, errs)
		}
		refused := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, account.ErrLastAdmin):
				refused++
			case err != nil:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused != 1 || a == b {
			t.Fatalf("round %d: admins a=%v b=%v, errors %v; want one demoted and the other refused", round, a, b, errs)
		}
		// Both admins again for the next round.
		for _, id := range []string{"acc_admin_a", "acc_admin_b"} {
			if err := setRoles(id, admins); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Alone, the last admin cannot lose the role; another role change is fine.
	if err := setRoles("acc_admin_b", []account.Role{account.RoleShopper}); err != nil {
		t.Fatal(err)
	}
	if err := setRoles("acc_admin_a", []account.Role{account.RoleShopper}); !errors.Is(err, account.ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v, want account.ErrLastAdmin", err)
	}
	if err := setRoles("acc_admin_a", []account.Role{account.RoleShopper, account.RoleAdmin, account.RoleOps}); err != nil {
		t.Fatalf("giving the last admin another role: %v", err)
	}
}

// Catalog: seeding once, search, paging, details, brands, variants with levels.
// SeedRace: the nodes of a cluster start together on an empty database and all
// seed the catalog; exactly one seeds it and none fails.
func SeedRace(t *testing.T, open Open) {
	s := open(t)
	phones, err := catalog.Seed()
	if err != nil {
		t.Fatal(err)
	}
	const racers = 4
	var seeded atomic.Int32
	errs := make(chan error, racers)
	start := make(chan struct{})
	for range racers {
		go func() {
			<-start
			ok, err := s.SeedCatalog(context.Background(), phones)
			if ok {
				seeded.Add(1)
			}
			errs <- err
		}()
	}
	close(start)
	for range racers {
		if err := <-errs; err != nil {
			t.Errorf("a racing seed failed: %v", err)
		}
	}
	if n := seeded.Load(); n != 1 {
		t.Fatalf("%d racing seeds reported seeding, want exactly 1", n)
	}
	got, err := s.SearchPhones(context.Background(), catalog.Query{PageSize: 100})
	if err != nil || len(got) != len(phones) {
		t.Fatalf("after the race: %d phones, %v; want %d", len(got), err, len(phones))
	}
}

func Catalog(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	phones, err := catalog.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if seeded, err := s.SeedCatalog(ctx, phones); err != nil || !seeded {
		t.Fatalf("first seed = %v, %v", seeded, err)
	}
	if seeded, err := s.SeedCatalog(ctx, phones); err != nil || seeded {
		t.Fatalf("second seed = %v, %v; want a no-op", seeded, err)
	}

	search := func(t *testing.T, q catalog.Query) []string {
		t.Helper()
		svc := catalog.NewService(s)
		var ids []string
		for {
			page, err := svc.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Items {
				ids = append(ids, p.ID)
			}
			if page.Next == "" {
				return ids
			}
			if q.After, err = q.DecodeCursor(page.Next); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect := func(keep func(catalog.Phone) bool) []string {
		var ids []string
		for _, p := range phones {
			if keep(p) {
				ids = append(ids, p.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	t.Run("paging_by_every_sort_visits_every_phone_once", func(t *testing.T) {
		for _, sort := range []catalog.Sort{catalog.SortName, catalog.SortPrice, catalog.SortPriceDesc, catalog.SortReleaseYearNew} {
			got := search(t, catalog.Query{Sort: sort, PageSize: 7})
			if diff := cmp.Diff(expect(func(catalog.Phone) bool { return true }), sorted(got)); diff != "" {
				t.Fatalf("sort %s (-want +got):\n%s", sort, diff)
			}
		}
	})
	t.Run("words_and_brand_filter", func(t *testing.T) {
		got := search(t, catalog.Query{Words: []string{"galaxy", "fold"}, Sort: catalog.SortName, PageSize: 100})
		want := expect(func(p catalog.Phone) bool {
			return containsFold(p.Name, "galaxy") && containsFold(p.Name, "fold")
		})
		if diff := cmp.Diff(want, sorted(got)); diff != "" || len(want) == 0 {
			t.Fatalf("galaxy fold (-want +got):\n%s", diff)
		}
		got = search(t, catalog.Query{Brand: "gOOGLE", Sort: catalog.SortName, PageSize: 100})
		if diff := cmp.Diff(expect(func(p catalog.Phone) bool { return p.Brand == "Google" }), sorted(got)); diff != "" {
			t.Fatalf("brand (-want +got):\n%s", diff)
		}
	})
	t.Run("like_wildcards_in_words_are_literal", func(t *testing.T) {
		if got := search(t, catalog.Query{Words: []string{"%"}, Sort: catalog.SortName, PageSize: 100}); len(got) != 0 {
			t.Fatalf("q=%% matched %d phones", len(got))
		}
	})
	t.Run("variant_filters_and_in_stock", func(t *testing.T) {
		maxPrice, storage := int64(50000), 256
		got := search(t, catalog.Query{MaxPrice: &maxPrice, StorageGB: &storage, Sort: catalog.SortPrice, PageSize: 100})
		want := expect(func(p catalog.Phone) bool {
			return slices.ContainsFunc(p.Variants, func(v catalog.Variant) bool { return v.PriceCents <= maxPrice && v.StorageGB == storage })
		})
		if diff := cmp.Diff(want, sorted(got)); diff != "" {
			t.Fatalf("price+storage (-want +got):\n%s", diff)
		}
		// No stock was received in this store: nothing is in stock yet.
		if got := search(t, catalog.Query{InStock: true, Sort: catalog.SortName, PageSize: 100}); len(got) != 0 {
			t.Fatalf("in_stock before any stock: %v", got)
		}
		v := phones[0].Variants[0]
		if err := s.SaveInventory(ctx, v.SKU, 0, []byte("x"), inventory.Level{Available: 3, Received: 3}, inventory.LedgerChange{}); err != nil {
			t.Fatal(err)
		}
		if got := search(t, catalog.Query{InStock: true, Sort: catalog.SortName, PageSize: 100}); !slices.Equal(got, []string{phones[0].ID}) {
			t.Fatalf("in_stock = %v, want [%s]", got, phones[0].ID)
		}
	})
	t.Run("phone_brands_and_variants", func(t *testing.T) {
		want := phones[1]
		got, err := s.Phone(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("phone (-seed +got):\n%s", diff)
		}
		if _, err := s.Phone(ctx, "no-such-phone"); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("unknown phone: err = %v", err)
		}
		brands, err := s.Brands(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, b := range brands {
			total += b.PhoneCount
		}
		if total != len(phones) || !slices.IsSortedFunc(brands, func(a, b catalog.Brand) int { return cmpString(a.Name, b.Name) }) {
			t.Fatalf("brands = %+v", brands)
		}
		vs, err := s.VariantsBySKU(ctx, []string{want.Variants[0].SKU, "no-such-sku"})
		if err != nil || len(vs) != 1 || vs[want.Variants[0].SKU].PhoneName != want.Name {
			t.Fatalf("variants = %+v, %v", vs, err)
		}
	})
}

// Orders: rows beside snapshots, history newest first in pages whose cursor is the
// row's own key, unfinished sagas.
func Orders(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t)
	base := time.Now().UTC().Truncate(time.Microsecond)
	saveOrder := func(t *testing.T, o order.Order, version int64) {
		t.Helper()
		state, err := order.Encode(&o)
		if err != nil {
			t.Fatal(err)
		}
		err = s.SaveOrder(ctx, version, state, order.Row{ID: o.ID, AccountID: o.AccountID, Status: o.Status, TotalCents: o.TotalCents,
			CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	save := func(t *testing.T, id, acc string, status order.Status, created time.Time, version int64) {
		t.Helper()
		saveOrder(t, order.Order{ID: id, AccountID: acc, Status: status, CreatedAt: created, UpdatedAt: created}, version)
	}
	for i := range 5 {
		save(t, fmt.Sprintf("ord_%d", i), "acc_a", order.StatusConfirmed, base.Add(time.Duration(i)*time.Second), 0)
	}
	save(t, "ord_same_time_b", "acc_a", order.StatusShipped, base.Add(4*time.Second), 0)
	save(t, "ord_rejected", "acc_a", order.StatusRejected, base.Add(9*time.Second), 0)
	save(t, "ord_other", "acc_b", order.StatusConfirmed, base, 0)
	save(t, "ord_committing", "acc_b", order.StatusCommitting, base, 0)
	save(t, "ord_cancelling", "acc_b", order.StatusConfirmed, base, 0)
	save(t, "ord_cancelling", "acc_b", order.StatusCancelling, base, 1)

	// walk reads the history of acc page by page, each page after the previous
	// one's Next, until a page has none.
	walk := func(t *testing.T, acc string, limit int) (ids []string, pages []order.HistoryPage) {
		t.Helper()
		var after *order.ListCursor
		for range 20 {
			page, err := s.ListOrders(ctx, acc, limit, after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Orders) > limit {
				t.Fatalf("limit %d gave a page of %d orders", limit, len(page.Orders))
			}
			pages = append(pages, page)
			for _, o := range page.Orders {
				ids = append(ids, o.ID)
			}
			if page.Next == nil {
				return ids, pages
			}
			after = page.Next
		}
		t.Fatalf("the history of %s did not end within 20 pages of %d", acc, limit)
		return nil, nil
	}
	// wantNext fails unless a page's Next is the cursor of its last row.
	wantNext := func(t *testing.T, page order.HistoryPage, createdAt time.Time, id string) {
		t.Helper()
		want := &order.ListCursor{CreatedAt: createdAt, ID: id}
		if diff := cmp.Diff(want, page.Next); diff != "" {
			t.Errorf("next cursor (-last row +got):\n%s", diff)
		}
	}

	t.Run("history_newest_first_without_rejected_or_unfinished", func(t *testing.T) {
		got, pages := walk(t, "acc_a", 2)
		want := []string{"ord_same_time_b", "ord_4", "ord_3", "ord_2", "ord_1", "ord_0"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("history of acc_a, newest first, without rejected (-want +got):\n%s", diff)
		}
		for _, p := range pages[:len(pages)-1] {
			last := p.Orders[len(p.Orders)-1]
			wantNext(t, p, last.CreatedAt, last.ID)
		}
	})

	t.Run("one_order_by_id_as_last_written_and_none_for_rejected_or_unknown", func(t *testing.T) {
		for id, want := range map[string]order.Status{"ord_3": order.StatusConfirmed, "ord_same_time_b": order.StatusShipped,
			"ord_committing": order.StatusCommitting, "ord_cancelling": order.StatusCancelling} {
			o, err := s.OrderByID(ctx, id)
			if err != nil {
				t.Fatalf("order %s: %v", id, err)
			}
			if o.ID != id || o.Status != want {
				t.Errorf("order %s = %s %s, want it %s", id, o.ID, o.Status, want)
			}
		}
		if o, err := s.OrderByID(ctx, "ord_other"); err != nil || o.AccountID != "acc_b" {
			t.Errorf("order ord_other = %+v, %v; want acc_b's", o, err)
		}
		for _, id := range []string{"ord_rejected", "ord_nobody", ""} {
			if o, err := s.OrderByID(ctx, id); !errors.Is(err, order.ErrNotFound) {
				t.Errorf("order %q = %+v, %v; want order.ErrNotFound", id, o, err)
			}
		}
	})

	t.Run("ops_list_every_account_by_status_and_account", func(t *testing.T) {
		if err := s.CreateAccount(ctx, account.Account{ID: "acc_b", Email: "b@example.com", Name: "B",
			Roles: []account.Role{account.RoleShopper}, PasswordHash: "$argon2id$x", CreatedAt: base}); err != nil {
			t.Fatal(err)
		}
		list := func(t *testing.T, q order.OpsQuery) (ids []string) {
			t.Helper()
			for range 20 {
				page, err := s.ListAllOrders(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Orders {
					ids = append(ids, o.ID)
					if want := map[string]string{"acc_b": "b@example.com"}[o.AccountID]; o.Email != want {
						t.Errorf("order %s of %s has e-mail %q, want %q", o.ID, o.AccountID, o.Email, want)
					}
				}
				if page.Next == nil {
					return ids
				}
				q.After = page.Next
			}
			t.Fatal("the list did not end within 20 pages")
			return nil
		}
		for _, tc := range []struct {
			name string
			q    order.OpsQuery
			want []string
		}{
			{"to_ship_oldest_first", order.OpsQuery{Status: order.StatusConfirmed, Limit: 4, OldestFirst: true},
				[]string{"ord_0", "ord_other", "ord_1", "ord_2", "ord_3", "ord_4"}},
			{"every_status_newest_first_without_rejected", order.OpsQuery{Limit: 2},
				[]string{"ord_same_time_b", "ord_4", "ord_3", "ord_2", "ord_1", "ord_other", "ord_committing", "ord_cancelling", "ord_0"}},
			{"one_account", order.OpsQuery{AccountID: "acc_b", Limit: 10},
				[]string{"ord_other", "ord_committing", "ord_cancelling"}},
			{"one_account_one_status", order.OpsQuery{AccountID: "acc_b", Status: order.StatusCancelling, Limit: 10, OldestFirst: true},
				[]string{"ord_cancelling"}},
			{"a_status_nobody_is_in", order.OpsQuery{Status: order.StatusNeedsAttention, Limit: 10, OldestFirst: true}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, list(t, tc.q)); diff != "" {
					t.Errorf("orders (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("a_page_that_ends_the_history_at_the_limit_has_no_next", func(t *testing.T) {
		for _, tc := range []struct {
			limit int
			sizes []int
		}{{1, []int{1, 1, 1, 1, 1, 1}}, {2, []int{2, 2, 2}}, {4, []int{4, 2}}, {6, []int{6}}, {7, []int{6}}} {
			_, pages := walk(t, "acc_a", tc.limit)
			sizes := make([]int, len(pages))
			for i, p := range pages {
				sizes[i] = len(p.Orders)
			}
			if diff := cmp.Diff(tc.sizes, sizes); diff != "" {
				t.Errorf("6 orders in pages of %d (-want +got page sizes):\n%s", tc.limit, diff)
			}
		}
		if page, err := s.ListOrders(ctx, "acc_none", 3, nil); err != nil || len(page.Orders) != 0 || page.Next != nil {
			t.Errorf("history of an account without orders = %+v, %v; want an empty page without next", page, err)
		}
		if _, err := s.ListOrders(ctx, "acc_a", 0, nil); err == nil {
			t.Error("a page of 0 orders was served; want an error")
		}
	})

	t.Run("ties_on_created_at_are_broken_by_id_across_a_page_boundary", func(t *testing.T) {
		tie := base.Add(time.Hour)
		for _, id := range []string{"ord_t2", "ord_t3", "ord_t1"} {
			save(t, id, "acc_tie", order.StatusConfirmed, tie, 0)
		}
		save(t, "ord_t0", "acc_tie", order.StatusConfirmed, tie.Add(-time.Microsecond), 0)
		got, pages := walk(t, "acc_tie", 2)
		if diff := cmp.Diff([]string{"ord_t3", "ord_t2", "ord_t1", "ord_t0"}, got); diff != "" {
			t.Fatalf("history of acc_tie (-want +got):\n%s", diff)
		}
		// The first page ends inside the tie: its cursor holds the id that breaks it.
		wantNext(t, pages[0], tie, "ord_t2")
	})

	t.Run("the_cursor_is_the_rows_created_at_not_the_snapshots", func(t *testing.T) {
		// The snapshot keeps the clock's nanoseconds; the row, and the order of the
		// history, only microseconds. A cursor is the row's key, exactly.
		older, newer := base.Add(2*time.Hour+1789*time.Nanosecond), base.Add(2*time.Hour+2*time.Microsecond+456*time.Nanosecond)
		save(t, "ord_n1", "acc_ns", order.StatusConfirmed, older, 0)
		save(t, "ord_n2", "acc_ns", order.StatusConfirmed, newer, 0)
		got, pages := walk(t, "acc_ns", 1)
		if diff := cmp.Diff([]string{"ord_n2", "ord_n1"}, got); diff != "" {
			t.Fatalf("history of acc_ns (-want +got):\n%s", diff)
		}
		if !pages[0].Orders[0].CreatedAt.Equal(newer) {
			t.Errorf("order created_at = %v, want the snapshot's %v", pages[0].Orders[0].CreatedAt, newer)
		}
		wantNext(t, pages[0], newer.Truncate(time.Microsecond), "ord_n2")
	})

	t.Run("orders_are_read_whole_from_their_snapshots", func(t *testing.T) {
		want := order.Order{ID: "ord_whole", AccountID: "acc_whole", RequestHash: "hash", Status: order.StatusShipped,
			Lines: []order.Line{
				{SKU: "sku-1", PhoneID: "p-1", Name: "Phone 1", Quantity: 2, UnitPriceCents: 500, DiscountCents: 100, PromoID: "promo_1"},
				{SKU: "sku-2", PhoneID: "p-2", Name: "Phone 2", Quantity: 1, UnitPriceCents: 300},
			},
			Address:  order.Address{Name: "Ann", Line1: "1 Main St", Line2: "Flat 2", City: "Springfield", PostalCode: "12345", Country: "US"},
			Currency: "USD", TotalCents: 1200, CreatedAt: base.Add(3 * time.Hour), UpdatedAt: base.Add(4 * time.Hour), CartRevision: 7,
		}
		saveOrder(t, want, 0)
		page, err := s.ListOrders(ctx, "acc_whole", 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Orders) != 1 || page.Next != nil {
			t.Fatalf("page = %d orders, next %v; want the one order and no next", len(page.Orders), page.Next)
		}
		if diff := cmp.Diff(&want, page.Orders[0]); diff != "" {
			t.Errorf("listed order (-saved +listed):\n%s", diff)
		}
	})

	unfinished, err := s.UnfinishedOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ord_cancelling", "ord_committing"}, sorted(unfinished)); diff != "" {
		t.Fatalf("unfinished (-want +got):\n%s", diff)
	}

	// A cart finds the confirmed order placed from its highest revision; orders
	// placed from no cart, rejected or unfinished ones do not count.
	fromCart := func(id string, status order.Status, rev uint64) {
		t.Helper()
		if err := s.SaveOrder(ctx, 0, []byte("x"), order.Row{ID: id, AccountID: "acc_cart", Status: status, CreatedAt: base, UpdatedAt: base,
			CartRevision: rev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.CartCheckedOut(ctx, "acc_cart"); err != nil || got != (cart.Checkout{}) {
		t.Fatalf("no order yet: %+v, %v", got, err)
	}
	fromCart("ord_c1", order.StatusConfirmed, 3)
	fromCart("ord_c2", order.StatusShipped, 7)
	fromCart("ord_c3", order.StatusRejected, 9)
	fromCart("ord_c4", order.StatusCommitting, 11)
	fromCart("ord_c5", order.StatusConfirmed, 0)
	if got, err := s.CartCheckedOut(ctx, "acc_cart"); err != nil || got != (cart.Checkout{OrderID: "ord_c2", Revision: 7}) {
		t.Fatalf("last checkout = %+v, %v; want ord_c2 from revision 7", got, err)
	}
}

// committers runs several committers where the engine allows concurrent writers.
func committers(s *sqlstore.Store) int {
	if s.SingleWriter() {
		return 1
	}
	return 4
}

func sorted(ids []string) []string { ids = slices.Clone(ids); slices.Sort(ids); return ids }

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// seedOne puts a single phone with one variant sku in the catalog.
func seedOne(t *testing.T, s *sqlstore.Store, sku string) {
	t.Helper()
	p := catalog.Phone{ID: "p-" + sku, Brand: "B", Model: "M", Name: "B M", Category: "c", ReleaseYear: 2024,
		Variants: []catalog.Variant{{SKU: sku, PhoneID: "p-" + sku, StorageGB: 128, Color: "Black", PriceCents: 100}}}
	if _, err := s.SeedCatalog(context.Background(), []catalog.Phone{p}); err != nil {
		t.Fatal(err)
	}
}

// encodeItem and decodeItem stand in for the grain's protobuf codec: the store
// treats state as opaque bytes.
func encodeItem(t *testing.T, it *inventory.Item) []byte {
	t.Helper()
	b, err := json.Marshal(it.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeItem(b []byte) *inventory.Item {
	var s inventory.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		panic(err)
	}
	it, err := inventory.FromSnapshot(s)
	if err != nil {
		panic(err)
	}
	return it
}
