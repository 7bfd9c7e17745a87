package sqlite_test

import (
	"context"
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
