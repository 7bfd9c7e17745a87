package main_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"phoneshop/internal/dbtest"
	"phoneshop/persistence/mysql"
)

// TestMigrateRoleMigratesAndExits: `phoneshop migrate` applies the schema and
// exits 0, after which a process that does not migrate opens the database; without
// a database to migrate it exits non-zero and says what is missing.
func TestMigrateRoleMigratesAndExits(t *testing.T) {
	dsn := dbtest.MySQLDSN(t)
	bin := phoneshopBinary(t)
	migrate := func(env ...string) ([]byte, error) {
		cmd := exec.Command(bin, "migrate")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PHONESHOP_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		return cmd.CombinedOutput()
	}
	if out, err := migrate("PHONESHOP_MYSQL_DSN="+dsn, "PHONESHOP_LOG_LEVEL=warn"); err != nil {
		t.Fatalf("phoneshop migrate: %v\n%s", err, out)
	}
	s, err := mysql.OpenMigrated(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open without migrating after phoneshop migrate: %v", err)
	}
	s.Close()
	out, err := migrate()
	if err == nil || !strings.Contains(string(out), "PHONESHOP_MYSQL_DSN is required") {
		t.Fatalf("phoneshop migrate without a DSN: %v\n%s\nwant a failure saying the DSN is required", err, out)
	}
}
