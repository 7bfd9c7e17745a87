package main

import (
	"context"
	"database/sql"
	"fmt"

	driver "github.com/go-sql-driver/mysql"
)

// ensureDatabase creates the DSN's database if it does not exist and returns the
// server's version, for the report.
func ensureDatabase(ctx context.Context, dsn string) (string, error) {
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	name := cfg.DBName
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	var version, flush string
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@innodb_flush_log_at_trx_commit").Scan(&version, &flush); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (innodb_flush_log_at_trx_commit=%s)", version, flush), nil
}

// openStatus opens the one connection loadgen reads the server's status counters
// through, apart from the baselines' pool so that its statements are never queued
// behind theirs.
func openStatus(dsn string) (*sql.DB, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("status counters: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
