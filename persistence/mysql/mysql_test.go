package mysql_test

import (
	"context"
	"database/sql"
	"strings"
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

// TestOpenMigratedRefusesASchemaThisBuildHasNotMigrated: a process that does not
// migrate (PHONESHOP_MYSQL_MIGRATE=false) starts only on a schema that has every
// migration it knows, and says what to run otherwise; migrations it does not know
// (a newer build's) do not stop it.
func TestOpenMigratedRefusesASchemaThisBuildHasNotMigrated(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.MySQLDSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	open := func() error {
		s, err := mysql.OpenMigrated(ctx, dsn)
		if err == nil {
			s.Close()
		}
		return err
	}
	refused := func(when string) {
		t.Helper()
		if err := open(); err == nil || !strings.Contains(err.Error(), "phoneshop migrate") {
			t.Fatalf("OpenMigrated %s: %v, want an error that says to run phoneshop migrate", when, err)
		}
	}
	refused("on an empty database")
	if err := mysql.MigrateTo(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	refused("on a schema at version 3")
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if err := open(); err != nil {
		t.Fatalf("OpenMigrated after Migrate: %v", err)
	}
	// A newer build migrated ahead (a rolling upgrade): this build still starts.
	if _, err := db.ExecContext(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999999, TRUE)"); err != nil {
		t.Fatal(err)
	}
	if err := open(); err != nil {
		t.Fatalf("OpenMigrated on a schema a newer build migrated: %v", err)
	}
}
