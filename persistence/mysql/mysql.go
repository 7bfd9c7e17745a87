// Package mysql is the production store: MySQL 8 or MariaDB 10.11 through
// github.com/go-sql-driver/mysql, with the schema applied by goose migrations at open
// and the shop's SQL shared with SQLite (persistence/sqlstore).
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"phoneshop/persistence/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects with dsn (a go-sql-driver DSN naming a database), creates the
// database if it does not exist, migrates it and returns the store. Its user needs
// the right to create and alter tables.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) { return open(ctx, dsn, true) }

// OpenMigrated connects with dsn to a database that Migrate has brought up to this
// build's schema, and changes no schema itself: a user that may only read and
// write rows (SELECT, INSERT, UPDATE, DELETE) is enough. It fails, saying so, when
// a migration of this build has not been applied; migrations of a newer build are
// fine, so the schema can move ahead of the processes during a rolling upgrade.
func OpenMigrated(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	return open(ctx, dsn, false)
}

// Migrate creates the database if needed and applies every migration, and nothing
// more: the one step that needs a user allowed to change the schema, run before
// processes that open the store with OpenMigrated.
func Migrate(ctx context.Context, dsn string) error {
	s, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	return s.Close()
}

func open(ctx context.Context, dsn string, migrating bool) (*sqlstore.Store, error) {
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("mysql: the DSN names no database (…/phoneshop)")
	}
	if migrating {
		if err := createDatabase(ctx, cfg); err != nil {
			return nil, err
		}
	}
	// One round trip per statement instead of prepare + execute: most of a group
	// commit's time was statement round trips. The driver interpolates only with
	// character sets where that is safe (utf8mb4 here) and refuses otherwise.
	cfg.InterpolateParams = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	db.SetConnMaxLifetime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: %w", err)
	}
	if migrating {
		err = migrate(ctx, db)
	} else {
		err = requireMigrated(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return sqlstore.New(db, db, dialect{}), nil
}

// migrateLock names the lock that lets one process at a time migrate: the
// processes of a cluster start together on one database.
const migrateLock = "phoneshop:migrate"

func migrate(ctx context.Context, db *sql.DB) error { return migrateTo(ctx, db, 0) }

// migrateTo applies the migrations up to version (0: all of them), the SQL files of
// this engine and the Go migrations every engine shares, under a MySQL named lock
// (goose has no session locker for MySQL).
func migrateTo(ctx context.Context, db *sql.DB, version int64) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 120)", migrateLock).Scan(&got); err != nil || got.Int64 != 1 {
		return fmt.Errorf("mysql: waiting for another process's migration: %v", err)
	}
	defer conn.ExecContext(context.Background(), "DO RELEASE_LOCK(?)", migrateLock) //nolint:errcheck // the session ends with conn anyway
	provider, err := newProvider(db)
	switch {
	case err != nil:
	case version == 0:
		_, err = provider.Up(ctx)
	default:
		_, err = provider.UpTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("mysql: migrate: %w", err)
	}
	return nil
}

// newProvider is goose over this engine's SQL files and the Go migrations every
// engine shares.
func newProvider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectMySQL, db, sub, goose.WithGoMigrations(sqlstore.GoMigrations()...))
}

// requireMigrated fails unless every migration of this build has been applied.
// It only reads: goose's version table, which Migrate created.
func requireMigrated(ctx context.Context, db *sql.DB) error {
	provider, err := newProvider(db)
	if err != nil {
		return err
	}
	pending, err := provider.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("mysql: reading the schema version (has `phoneshop migrate` run on this database?): %w", err)
	}
	if pending {
		current, target, err := provider.GetVersions(ctx)
		if err != nil {
			return fmt.Errorf("mysql: the schema misses migrations of this build: %w", err)
		}
		return fmt.Errorf("mysql: the schema is at version %d and this build needs %d: run `phoneshop migrate` with a user allowed to change the schema first", current, target)
	}
	return nil
}

// createDatabase makes the DSN's database exist, so a fresh server needs no set-up.
func createDatabase(ctx context.Context, cfg *driver.Config) error {
	server := cfg.Clone()
	server.DBName = ""
	db, err := sql.Open("mysql", server.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.DBName+"` CHARACTER SET utf8mb4")
	if err != nil {
		return fmt.Errorf("mysql: create database %s: %w", cfg.DBName, err)
	}
	return nil
}

type dialect struct{}

// Error numbers of MySQL and MariaDB.
const (
	erConCount           = 1040 // too many connections
	erServerShutdown     = 1053
	erDupEntry           = 1062
	erLockWaitTimeout    = 1205
	erLockDeadlock       = 1213
	erOptionPreventsStmt = 1290 // --read-only
	erQueryInterrupted   = 1317
	erReadOnlyMode       = 1836
	erConnectionKilled   = 1927 // MariaDB
	erQueryTimeout       = 3024 // max_execution_time (MySQL)
	erStatementTimeout   = 1969 // max_statement_time (MariaDB)
)

func (dialect) IsDuplicate(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == erDupEntry
}

func (dialect) IsRetryable(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && (me.Number == erLockDeadlock || me.Number == erLockWaitTimeout)
}

// IsUnavailable: the server is busy, shutting down, read-only, out of connections,
// or killed the statement; go-sql-driver's own connection errors (ErrInvalidConn,
// driver.ErrBadConn) are recognised by sqlstore.
func (dialect) IsUnavailable(err error) bool {
	if errors.Is(err, driver.ErrInvalidConn) {
		return true
	}
	var me *driver.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case erConCount, erServerShutdown, erLockWaitTimeout, erLockDeadlock, erOptionPreventsStmt,
		erQueryInterrupted, erReadOnlyMode, erConnectionKilled, erQueryTimeout, erStatementTimeout:
		return true
	}
	return false
}

func (dialect) OnConflict(key, update []string) string {
	if len(update) == 0 {
		return " ON DUPLICATE KEY UPDATE " + key[0] + " = " + key[0]
	}
	set := make([]string, len(update))
	for i, c := range update {
		set[i] = c + " = VALUES(" + c + ")"
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
}

// BatchTxOptions: READ COMMITTED, so that batches committing side by side take no
// gap locks on each other; every statement in a batch addresses rows by key.
func (dialect) BatchTxOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
}

// SingleWriter: InnoDB takes concurrent writers.
func (dialect) SingleWriter() bool { return false }
