package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"phoneshop/persistence/sqlite"
	"phoneshop/persistence/sqlstore"
	"phoneshop/persistence/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPreLedgerSnapshotsMoveToTheLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	storetest.PreLedgerSnapshots(t, db, func(ctx context.Context, version int64) error {
		return sqlite.MigrateTo(ctx, db, version)
	}, func() *sqlstore.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
