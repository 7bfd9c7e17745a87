package mysql_test

import (
	"context"
	"database/sql"
	"testing"

	"phoneshop/internal/dbtest"
	"phoneshop/persistence/mysql"
	"phoneshop/persistence/sqlstore"
	"phoneshop/persistence/storetest"
)

// TestContract runs the store contract against a real MariaDB/MySQL, one fresh
// database per test.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		s, err := mysql.Open(context.Background(), dbtest.MySQLDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPreLedgerSnapshotsMoveToTheLedger(t *testing.T) {
	dsn := dbtest.MySQLDSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.PreLedgerSnapshots(t, db, func(ctx context.Context, version int64) error {
		return mysql.MigrateTo(ctx, db, version)
	}, func() *sqlstore.Store {
		s, err := mysql.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
