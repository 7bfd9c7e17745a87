// Package baseline serves the yardsticks of the flash-sale benchmark: the bare HTTP
// limit of Fiber, the classic checkout (one MySQL transaction per order) and the
// Redis way (a Lua decrement in Redis, then the order row in MySQL). The benchmark
// drives them with the same load generator as the shop, on the same machine, so its
// report can give the shop's numbers as ratios of these.
package baseline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/gofiber/fiber/v2"
	goredis "github.com/redis/go-redis/v9"
)

// Config is what New needs: the database that receives the baseline_ tables, the
// Redis server and the key prefix of the Redis way, and where to log.
type Config struct {
	// MySQLDSN is a go-sql-driver DSN naming an existing database.
	MySQLDSN string
	// RedisAddr is the Redis server's host:port.
	RedisAddr string
	// RedisPrefix starts every key the baselines write.
	RedisPrefix string
	// Logger receives backend failures; nil discards them.
	Logger *slog.Logger
}

const (
	// mysqlPoolSize matches the shop's pool (persistence/mysql), so both sides of
	// a ratio have the same number of connections to the database.
	mysqlPoolSize = 64
	// requestTimeout bounds each checkout's database and Redis calls.
	requestTimeout = 5 * time.Second
	// shutdownTimeout bounds how long Close waits for in-flight requests.
	shutdownTimeout = 10 * time.Second
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS baseline_stock (
		sku VARCHAR(150) PRIMARY KEY,
		qty BIGINT NOT NULL
	) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS baseline_orders (
		id VARCHAR(64) PRIMARY KEY,
		account_id VARCHAR(64),
		sku VARCHAR(150),
		quantity INT,
		price_cents BIGINT,
		created_at BIGINT
	) ENGINE=InnoDB`,
}

// Server holds the baselines' connections and their Fiber app.
type Server struct {
	db          *sql.DB
	redis       *goredis.Client
	reserve     *goredis.Script
	redisPrefix string
	log         *slog.Logger
	app         *fiber.App
}

// New creates the baseline_ tables in cfg's database if they are missing, opens a
// MySQL pool and a Redis client, loads the Redis way's script and builds the app.
func New(ctx context.Context, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dsn, err := driver.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		return nil, fmt.Errorf("baseline: MySQL DSN: %w", err)
	}
	if dsn.DBName == "" {
		return nil, errors.New("baseline: the MySQL DSN names no database")
	}
	// The shop's driver settings (persistence/mysql): a ratio should compare the
	// architectures, not two ways of configuring the driver.
	dsn.InterpolateParams = true
	db, err := sql.Open("mysql", dsn.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("baseline: MySQL: %w", err)
	}
	db.SetMaxOpenConns(mysqlPoolSize)
	db.SetMaxIdleConns(mysqlPoolSize)
	db.SetConnMaxLifetime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("baseline: MySQL: %w", err)
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("baseline: create tables: %w", err)
		}
	}

	rdb := goredis.NewClient(&goredis.Options{Addr: cfg.RedisAddr})
	reserve := goredis.NewScript(reserveScript)
	if err := reserve.Load(ctx, rdb).Err(); err != nil {
		rdb.Close()
		db.Close()
		return nil, fmt.Errorf("baseline: Redis at %s: load script: %w", cfg.RedisAddr, err)
	}

	s := &Server{
		db:          db,
		redis:       rdb,
		reserve:     reserve,
		redisPrefix: cfg.RedisPrefix,
		log:         log,
	}
	s.app = s.newApp()
	return s, nil
}

// App returns the Fiber app serving the baselines' routes.
func (s *Server) App() *fiber.App { return s.app }

// Close stops the app, waiting for in-flight requests, then closes Redis and
// MySQL: the reverse of the order New opened them.
func (s *Server) Close() error {
	return errors.Join(
		s.app.ShutdownWithTimeout(shutdownTimeout),
		s.redis.Close(),
		s.db.Close(),
	)
}

// SetStock gives sku qty units in both MySQL (the classic checkout) and Redis (the
// Redis way) and deletes every baseline order, so a run starts from a known state.
func (s *Server) SetStock(ctx context.Context, sku string, qty int64) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO baseline_stock (sku, qty) VALUES (?, ?) ON DUPLICATE KEY UPDATE qty = VALUES(qty)`,
		sku, qty); err != nil {
		return fmt.Errorf("baseline: set MySQL stock of %s: %w", sku, err)
	}
	if err := s.redis.Set(ctx, s.stockKey(sku), qty, 0).Err(); err != nil {
		return fmt.Errorf("baseline: set Redis stock of %s: %w", sku, err)
	}
	if _, err := s.db.ExecContext(ctx, `TRUNCATE TABLE baseline_orders`); err != nil {
		return fmt.Errorf("baseline: truncate orders: %w", err)
	}
	return nil
}

// Counts returns sku's units left in MySQL and in Redis and its number of order
// rows, for a run's correctness check. A missing row or key counts as 0 units.
func (s *Server) Counts(ctx context.Context, sku string) (mysqlQty, redisQty, orders int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT qty FROM baseline_stock WHERE sku = ?`, sku).Scan(&mysqlQty)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, 0, fmt.Errorf("baseline: MySQL stock of %s: %w", sku, err)
	}
	redisQty, err = s.redis.Get(ctx, s.stockKey(sku)).Int64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return 0, 0, 0, fmt.Errorf("baseline: Redis stock of %s: %w", sku, err)
	}
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM baseline_orders WHERE sku = ?`, sku).Scan(&orders)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("baseline: orders of %s: %w", sku, err)
	}
	return mysqlQty, redisQty, orders, nil
}

func (s *Server) stockKey(sku string) string {
	return s.redisPrefix + "baseline:stock:" + sku
}

// erDupEntry is MySQL's and MariaDB's error number for a duplicate key.
const erDupEntry = 1062

func isDuplicate(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == erDupEntry
}
