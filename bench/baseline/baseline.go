// Package baseline serves the yardsticks of the flash-sale benchmark: the bare HTTP
// limit of Fiber, the classic checkout (one MySQL transaction per order) and the
// Redis way (a Lua decrement in Redis, then the order row in MySQL), on the
// machine's Redis and, when given one, on a Redis that fsyncs every write. The
// benchmark drives them with the same load generator as the shop, on the same
// machine, so its report can give the shop's numbers as ratios of these.
package baseline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/gofiber/fiber/v2"
	goredis "github.com/redis/go-redis/v9"
)

// Config is what New needs: the database that receives the baseline_ tables, the
// Redis servers and the key prefix of the Redis way, and where to log.
type Config struct {
	// MySQLDSN is a go-sql-driver DSN naming an existing database.
	MySQLDSN string
	// RedisAddr is the Redis server's host:port.
	RedisAddr string
	// DurableRedisAddr, when set, is a second Redis server for the same Redis way,
	// one that fsyncs every write before it answers (DurableRedis).
	DurableRedisAddr string
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

// Redis names a Redis server of the Redis way; its checkout is served at
// /baseline/<name>/checkout.
type Redis string

const (
	// MainRedis is Config.RedisAddr, persisting as that server is configured.
	MainRedis Redis = "redis"
	// DurableRedis is Config.DurableRedisAddr, which the caller has configured to
	// fsync every write (appendonly yes, appendfsync always; RedisPersistence says
	// whether it is).
	DurableRedis Redis = "redis-durable"
)

// Server holds the baselines' connections and their Fiber app. Both Redis ways
// share the one MySQL pool, as they share the server's connection limit.
type Server struct {
	db          *sql.DB
	redis       map[Redis]*goredis.Client
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

	addrs := map[Redis]string{MainRedis: cfg.RedisAddr}
	if cfg.DurableRedisAddr != "" {
		addrs[DurableRedis] = cfg.DurableRedisAddr
	}
	reserve := goredis.NewScript(reserveScript)
	clients := map[Redis]*goredis.Client{}
	for name, addr := range addrs {
		rdb := goredis.NewClient(&goredis.Options{Addr: addr})
		clients[name] = rdb
		if err := reserve.Load(ctx, rdb).Err(); err != nil {
			closeAll(clients)
			db.Close()
			return nil, fmt.Errorf("baseline: Redis at %s: load script: %w", addr, err)
		}
	}

	s := &Server{
		db:          db,
		redis:       clients,
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
		closeAll(s.redis),
		s.db.Close(),
	)
}

func closeAll(clients map[Redis]*goredis.Client) error {
	var errs []error
	for _, c := range clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// SetStock gives sku qty units in MySQL (the classic checkout) and in every Redis
// (the Redis way) and deletes every baseline order, so a run starts from a known
// state.
func (s *Server) SetStock(ctx context.Context, sku string, qty int64) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO baseline_stock (sku, qty) VALUES (?, ?) ON DUPLICATE KEY UPDATE qty = VALUES(qty)`,
		sku, qty); err != nil {
		return fmt.Errorf("baseline: set MySQL stock of %s: %w", sku, err)
	}
	for name, rdb := range s.redis {
		if err := rdb.Set(ctx, s.stockKey(sku), qty, 0).Err(); err != nil {
			return fmt.Errorf("baseline: set stock of %s in %s: %w", sku, name, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, `TRUNCATE TABLE baseline_orders`); err != nil {
		return fmt.Errorf("baseline: truncate orders: %w", err)
	}
	return nil
}

// Counts is a SKU's state in the baselines' stores.
type Counts struct {
	// MySQL is the units left in MySQL: the classic checkout's stock.
	MySQL int64
	// Redis is the units left in each Redis: the Redis way's stock.
	Redis map[Redis]int64
	// Orders is the SKU's order rows, whichever way placed them.
	Orders int64
}

// Counts returns sku's units left in MySQL and in every Redis and its number of
// order rows, for a run's correctness check. A missing row or key counts as 0 units.
func (s *Server) Counts(ctx context.Context, sku string) (Counts, error) {
	c := Counts{Redis: map[Redis]int64{}}
	err := s.db.QueryRowContext(ctx, `SELECT qty FROM baseline_stock WHERE sku = ?`, sku).Scan(&c.MySQL)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Counts{}, fmt.Errorf("baseline: MySQL stock of %s: %w", sku, err)
	}
	for name, rdb := range s.redis {
		left, err := rdb.Get(ctx, s.stockKey(sku)).Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return Counts{}, fmt.Errorf("baseline: stock of %s in %s: %w", sku, name, err)
		}
		c.Redis[name] = left
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM baseline_orders WHERE sku = ?`, sku).Scan(&c.Orders); err != nil {
		return Counts{}, fmt.Errorf("baseline: orders of %s: %w", sku, err)
	}
	return c, nil
}

// RedisPersistence says how the Redis server name keeps its writes: "appendonly
// yes, appendfsync always" fsyncs every write before it answers, so a decrement it
// acknowledged survives a crash of Redis or of its machine.
func (s *Server) RedisPersistence(ctx context.Context, name Redis) (appendOnly, appendFsync string, err error) {
	rdb, err := s.redisClient(name)
	if err != nil {
		return "", "", err
	}
	for _, setting := range []struct {
		name string
		to   *string
	}{{"appendonly", &appendOnly}, {"appendfsync", &appendFsync}} {
		got, err := rdb.ConfigGet(ctx, setting.name).Result()
		if err != nil {
			return "", "", fmt.Errorf("baseline: Redis CONFIG GET %s: %w", setting.name, err)
		}
		*setting.to = got[setting.name]
	}
	return appendOnly, appendFsync, nil
}

// RedisPID is the process id the Redis server name reports (INFO server), for
// sampling its CPU; it means something only on that server's own machine.
func (s *Server) RedisPID(ctx context.Context, name Redis) (int, error) {
	rdb, err := s.redisClient(name)
	if err != nil {
		return 0, err
	}
	info, err := rdb.InfoMap(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Errorf("baseline: Redis INFO server: %w", err)
	}
	pid, err := strconv.Atoi(info["Server"]["process_id"])
	if err != nil {
		return 0, fmt.Errorf("baseline: Redis INFO server: process_id: %w", err)
	}
	return pid, nil
}

func (s *Server) redisClient(name Redis) (*goredis.Client, error) {
	rdb, ok := s.redis[name]
	if !ok {
		return nil, fmt.Errorf("baseline: no Redis %q configured", name)
	}
	return rdb, nil
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
