package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"phoneshop/account"
	"phoneshop/actors/inventory"
	"phoneshop/actors/snapshot"
	"phoneshop/persistence/sqlite"
)

func open(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSnapshotSavesAreFenced(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	l := inventory.Level{}
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
	for i, s := range steps {
		err := db.SaveInventory(ctx, "sku-1", s.expected, []byte(fmt.Sprint(i)), l)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
	}
	got, err := db.LoadInventory(ctx, "sku-1")
	if err != nil || got.Version != 3 || string(got.State) != "5" {
		t.Fatalf("load = %+v, %v; want version 3 with the last accepted state", got, err)
	}
	if none, err := db.LoadInventory(ctx, "sku-unknown"); err != nil || none.Version != 0 || none.State != nil {
		t.Fatalf("load of a never-saved identity = %+v, %v", none, err)
	}
}

// TestTwoActivationsRacingSellEachUnitOnce: two activations of one inventory grain
// (what protoactor's best-effort placement allows during a hand-over) load the same
// version and each sell the last units to a different order. The store accepts one.
func TestTwoActivationsRacingSellEachUnitOnce(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	base := &inventory.Item{}
	if _, err := base.Receive("delivery", 5); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveInventory(ctx, "hot", 0, encode(t, base), base.Level()); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		loaded, err := db.LoadInventory(ctx, "hot")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for a := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				it := decode(t, loaded.State)
				order := fmt.Sprintf("round%d-activation%d", round, a)
				if _, err := it.Receive(order+"-restock", 5); err != nil {
					errs[a] = err
					return
				}
				if _, err := it.Reserve(order, 5, time.Now(), time.Minute); err != nil {
					errs[a] = err
					return
				}
				if _, err := it.Commit(order); err != nil {
					errs[a] = err
					return
				}
				errs[a] = db.SaveInventory(ctx, "hot", loaded.Version, encode(t, it), it.Level())
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
	final, err := db.LoadInventory(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	it := decode(t, final.State)
	if l := it.Level(); l.Sold != 100 || l.Received != 105 || it.Check() != nil {
		t.Fatalf("after 20 rounds: %+v (check %v); want 100 sold of 105 received, one sale per round", l, it.Check())
	}
}

func TestDuplicateEmailIsErrEmailTaken(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	a := account.Account{ID: "acc_1", Email: "a@example.com", Name: "A", Roles: []account.Role{account.RoleShopper}, PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.ID = "acc_2"
	if err := db.CreateAccount(ctx, a); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("err = %v, want ErrEmailTaken", err)
	}
	if _, err := db.AccountByEmail(ctx, "nobody@example.com"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// encode and decode stand in for the grain's protobuf codec: the store treats state
// as opaque bytes.
func encode(t *testing.T, it *inventory.Item) []byte {
	t.Helper()
	b, err := json.Marshal(it.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte) *inventory.Item {
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
