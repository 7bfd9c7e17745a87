package mysql_test

import (
	"context"
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
