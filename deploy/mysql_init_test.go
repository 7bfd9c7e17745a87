package deploy_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"phoneshop/internal/dbtest"
	"phoneshop/persistence/mysql"
)

// appUserScript is the script in deploy/mysql-init that makes the shop's MySQL user.
const appUserScript = "app-user.sh"

// MySQL's error numbers for a refused privilege.
const (
	erTableAccessDenied    = 1142 // a command on a table
	erDBAccessDenied       = 1044 // a command on a database
	erSpecificAccessDenied = 1227 // needs a global privilege (CREATE USER ...)
)

// TestMySQLInitMakesAUserThatOnlyReadsAndWritesRows runs deploy/mysql-init's
// script as the mysql image does (sourced, with the entrypoint's docker_process_sql
// as root) against the test MariaDB, then connects as the user it made: the shop's
// store opens on a migrated schema, rows can be read and written, and every change
// of schema, other database or user is refused.
func TestMySQLInitMakesAUserThatOnlyReadsAndWritesRows(t *testing.T) {
	ctx := context.Background()
	rootDSN := dbtest.MySQLDSN(t)
	root, err := driver.ParseDSN(rootDSN)
	if err != nil {
		t.Fatal(err)
	}
	client, err := exec.LookPath("mysql")
	if err != nil {
		t.Fatalf("the mysql client (Debian: mariadb-client) runs the init script: %v", err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	user := "phoneshop_app_" + hex.EncodeToString(suffix)
	// Quotes and a backslash: the script must quote the password as SQL.
	password := `it's a \ "pass" word`

	rootDB, err := sql.Open("mysql", rootDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := rootDB.Exec("DROP USER IF EXISTS '" + user + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", user, err)
		}
		rootDB.Close()
	})

	runScript := func(env ...string) ([]byte, error) {
		host, port, _ := strings.Cut(root.Addr, ":")
		defaults := filepath.Join(t.TempDir(), "root.cnf")
		cnf := fmt.Sprintf("[client]\nhost=%s\nport=%s\nuser=%s\n", host, port, root.User)
		if root.Passwd != "" {
			cnf += fmt.Sprintf("password=%q\n", root.Passwd)
		}
		if err := os.WriteFile(defaults, []byte(cnf), 0o600); err != nil {
			t.Fatal(err)
		}
		// The entrypoint's docker_process_sql: root's client on MYSQL_DATABASE,
		// which a --database argument overrides. The entrypoint runs with
		// set -eo pipefail and sources the script.
		shim := `docker_process_sql() { "$CLIENT" --defaults-extra-file="$DEFAULTS" --protocol=tcp --database="$MYSQL_DATABASE" "$@"; }
set -eo pipefail
. "$SCRIPT"`
		cmd := exec.Command("bash", "-c", shim)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "CLIENT=" + client, "DEFAULTS=" + defaults,
			"SCRIPT=" + filepath.Join("..", mysqlInitDir, appUserScript), "MYSQL_DATABASE=" + root.DBName}, env...)
		return cmd.CombinedOutput()
	}
	if out, err := runScript("APP_USER=" + user); err == nil || !strings.Contains(string(out), "APP_PASSWORD") {
		t.Fatalf("the script without APP_PASSWORD: %v\n%s\nwant it to stop, naming APP_PASSWORD", err, out)
	}
	if out, err := runScript("APP_USER="+user, "APP_PASSWORD="+password); err != nil {
		t.Fatalf("%s: %v\n%s", appUserScript, err, out)
	}

	// The migration's user (root here) makes the schema and a table to probe.
	if err := mysql.Migrate(ctx, rootDSN); err != nil {
		t.Fatal(err)
	}
	if _, err := rootDB.Exec("CREATE TABLE grant_probe (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}

	app := root.Clone()
	app.User, app.Passwd = user, password
	store, err := mysql.OpenMigrated(ctx, app.FormatDSN())
	if err != nil {
		t.Fatalf("the shop's store as %s: %v", user, err)
	}
	store.Close()
	connector, err := driver.NewConnector(app)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })

	for _, stmt := range []string{
		"INSERT INTO grant_probe (id, v) VALUES (1, 1)",
		"UPDATE grant_probe SET v = 2 WHERE id = 1",
		"SELECT COUNT(*) FROM grant_probe",
		"DELETE FROM grant_probe WHERE id = 1",
		"SELECT COUNT(*) FROM goose_db_version",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Errorf("%s as %s: %v, want it allowed", stmt, user, err)
		}
	}
	for _, tc := range []struct {
		stmt   string
		refuse uint16
	}{
		{"CREATE TABLE intruder (id INT)", erTableAccessDenied},
		{"ALTER TABLE grant_probe ADD COLUMN w INT", erTableAccessDenied},
		{"DROP TABLE grant_probe", erTableAccessDenied},
		{"TRUNCATE TABLE grant_probe", erTableAccessDenied},
		{"CREATE INDEX probe_v ON grant_probe (v)", erTableAccessDenied},
		{"DROP DATABASE `" + root.DBName + "`", erDBAccessDenied},
		{"CREATE DATABASE phoneshop_intruder", erDBAccessDenied},
		{"SELECT COUNT(*) FROM mysql.user", erTableAccessDenied},
		{"CREATE USER intruder IDENTIFIED BY 'x'", erSpecificAccessDenied},
	} {
		_, err := db.ExecContext(ctx, tc.stmt)
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != tc.refuse {
			t.Errorf("%s as %s: %v, want MySQL error %d (refused)", tc.stmt, user, err, tc.refuse)
		}
	}
}
