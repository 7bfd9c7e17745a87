// Package dbtest gives tests their own database on the real servers the CI machine
// runs: a fresh MariaDB/MySQL database per call, dropped when the test ends. The
// server's address comes from PHONESHOP_TEST_MYSQL_DSN (default: root without a
// password on 127.0.0.1:3306). A missing server fails the test; only -short skips it.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
)

// DefaultMySQLDSN is the CI machine's MariaDB.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// MySQLDSN returns the DSN of a new, empty database and drops it at cleanup.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs MariaDB/MySQL (PHONESHOP_TEST_MYSQL_DSN); -short skips it")
	}
	base := os.Getenv("PHONESHOP_TEST_MYSQL_DSN")
	if base == "" {
		base = DefaultMySQLDSN
	}
	cfg, err := driver.ParseDSN(base)
	if err != nil {
		t.Fatalf("PHONESHOP_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	server, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.PingContext(ctx); err != nil {
		server.Close()
		t.Fatalf("MariaDB/MySQL at %s is not reachable (%v): start it, or set PHONESHOP_TEST_MYSQL_DSN, or run with -short", cfg.Addr, err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "phoneshop_test_" + hex.EncodeToString(suffix)
	if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		server.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := server.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		server.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// DefaultRedisAddr is the CI machine's Redis.
const DefaultRedisAddr = "127.0.0.1:6379"

// Redis returns the address of the test Redis (PHONESHOP_TEST_REDIS_ADDR) and a key
// prefix of this test's own, whose keys are deleted when the test ends.
func Redis(t testing.TB) (addr, prefix string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis (PHONESHOP_TEST_REDIS_ADDR); -short skips it")
	}
	addr = os.Getenv("PHONESHOP_TEST_REDIS_ADDR")
	if addr == "" {
		addr = DefaultRedisAddr
	}
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		t.Fatalf("Redis at %s is not reachable (%v): start it, or set PHONESHOP_TEST_REDIS_ADDR, or run with -short", addr, err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	prefix = "phoneshop_test_" + hex.EncodeToString(suffix) + ":"
	t.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean test keys %s*: %v", prefix, err)
		}
	})
	return addr, prefix
}
