package shop_test

import (
	"context"
	"strings"
	"testing"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
	"phoneshop/shop"
)

// TestProcessesThatDoNotMigrateStartOnlyOnAMigratedSchema: with
// PHONESHOP_MYSQL_MIGRATE=false a process changes no schema (its user may have no
// right to) and refuses to start before `phoneshop migrate` has run.
func TestProcessesThatDoNotMigrateStartOnlyOnAMigratedSchema(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.MySQLDSN(t)
	dev, _, err := config.ParseDev([]string{"--data-dir", t.TempDir(), "--dev-mail=false", "--mysql-dsn", dsn, "--mysql-migrate=false"})
	if err != nil {
		t.Fatal(err)
	}
	mailer := config.Mailer{MySQLDSN: dsn, MySQLMigrate: false}
	starts := map[string]func() (*shop.Shop, error){
		"dev": func() (*shop.Shop, error) {
			return shop.StartDev(ctx, dev, shop.Options{Members: 1}, shoptest.Logger())
		},
		"mailer": func() (*shop.Shop, error) { return shop.StartMailer(ctx, mailer, shoptest.Logger()) },
	}
	for role, start := range starts {
		s, err := start()
		if err == nil {
			_ = s.Close(ctx)
			t.Fatalf("%s started on an unmigrated database without migrating", role)
		}
		if !strings.Contains(err.Error(), "phoneshop migrate") {
			t.Errorf("%s: %v, want an error that says to run phoneshop migrate", role, err)
		}
	}
	if err := shop.Migrate(ctx, config.Migrate{MySQLDSN: dsn}, shoptest.Logger()); err != nil {
		t.Fatal(err)
	}
	s, err := starts["dev"]()
	if err != nil {
		t.Fatalf("dev after phoneshop migrate: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Error(err)
	}
}
