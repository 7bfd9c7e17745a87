// Package sqlite is the embedded default store: one SQLite file (modernc.org/sqlite,
// no cgo) holding everything MySQL holds in production, with the same schema applied
// by goose migrations at open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"phoneshop/persistence/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database file at path, migrates it and returns
// the store. Writes are durable when they return: WAL with synchronous=FULL.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	dsn := func(mode string) string {
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		if mode != "" {
			q.Set("mode", mode)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// SQLite has one writer at a time; one writer connection queues writes in Go
	// instead of in busy-retry loops. Readers run concurrently beside it (WAL).
	writer, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	if err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, err
	}
	reader, err := sql.Open("sqlite", dsn("ro"))
	if err != nil {
		writer.Close()
		return nil, err
	}
	reader.SetMaxOpenConns(4)
	return sqlstore.New(writer, reader, dialect{}), nil
}

func migrate(ctx context.Context, db *sql.DB) error { return migrateTo(ctx, db, 0) }

// migrateTo applies the migrations up to version (0: all of them): the SQL files
// of this engine and the Go migrations every engine shares.
func migrateTo(ctx context.Context, db *sql.DB, version int64) error {
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"),
		goose.WithGoMigrations(sqlstore.GoMigrations()...))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if version == 0 {
		_, err = provider.Up(ctx)
	} else {
		_, err = provider.UpTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

type dialect struct{}

func (dialect) IsDuplicate(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// IsRetryable: one writer, so no deadlock; a busy database already waited busy_timeout.
func (dialect) IsRetryable(error) bool { return false }

func (dialect) OnConflict(key, update []string) string {
	target := " ON CONFLICT (" + strings.Join(key, ", ") + ")"
	if len(update) == 0 {
		return target + " DO NOTHING"
	}
	set := make([]string, len(update))
	for i, c := range update {
		set[i] = c + " = excluded." + c
	}
	return target + " DO UPDATE SET " + strings.Join(set, ", ")
}

// BatchTxOptions: SQLite has one writer; its default transaction is the right one.
func (dialect) BatchTxOptions() *sql.TxOptions { return nil }

// IsUnavailable: the database is busy or locked past busy_timeout, the disk is full
// or failing, or a statement was interrupted; none of these says the statement is
// wrong.
func (dialect) IsUnavailable(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

// SingleWriter: one writer at a time (WAL).
func (dialect) SingleWriter() bool { return true }
