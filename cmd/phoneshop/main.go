// Command phoneshop runs the shop. Its first argument is the role:
//
//	phoneshop dev    every role in one process on embedded defaults (what `make run` starts)
//	phoneshop node   a cluster member hosting the cart, inventory and order grains
//	phoneshop edge   the HTTP edge, a cluster client that hosts no grain
//	phoneshop mailer consumes the mail queues of RabbitMQ and sends through SMTP
//	phoneshop migrate creates the MySQL/MariaDB database and applies the schema migrations, then exits
//
// node and edge share one MySQL/MariaDB and find each other through Consul. Every
// role migrates the schema at start unless PHONESHOP_MYSQL_MIGRATE=false, which
// leaves that to migrate, run by a user allowed to change the schema.
//
// Every setting has an environment variable (PHONESHOP_ prefix) and a flag; see
// `phoneshop dev --help`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // on DebugAddr only: the edge is Fiber, not DefaultServeMux
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"phoneshop/config"
	"phoneshop/shop"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "phoneshop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	role := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		role, args = args[0], args[1:]
	}
	switch role {
	case "dev":
		return runDev(ctx, args)
	case "node":
		return runNode(ctx, args)
	case "edge":
		return runEdge(ctx, args)
	case "mailer":
		return runMailer(ctx, args)
	case "migrate":
		return runMigrate(ctx, args)
	case "probe":
		return probe(args)
	default:
		return fmt.Errorf("usage: phoneshop dev|node|edge|mailer|migrate [flags] | phoneshop probe URL (unknown role %q)", role)
	}
}

// parsed handles what every role does with its parsed configuration: print the
// usage on --help (done), or stop on an error.
func parsed(help string, err error) (done bool, _ error) {
	if errors.Is(err, config.ErrHelp) {
		fmt.Println(help)
		return true, nil
	}
	return false, err
}

// startLogging makes the role's logger, logs its configuration (secrets masked)
// and serves pprof when asked for.
func startLogging(role string, cfg any, logging config.Logging) *slog.Logger {
	log := newLogger(logging.LogLevel)
	// go-redis prints every failed dial; the cache's breaker already says, once,
	// that Redis is unreachable. Its lines go to the debug log.
	goredis.SetLogger(redisLog{log})
	log.Info("starting phoneshop "+role, "config", config.String(cfg))
	servePprof(logging.DebugAddr, log)
	return log
}

// serve runs the edge until SIGINT/SIGTERM (or until it fails), then drains it,
// leaves the cluster and closes the store, in that order (Shop.Close).
func serve(ctx context.Context, s *shop.Shop, addr string, shutdownTimeout time.Duration, log *slog.Logger, banner func()) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	serveErr := make(chan error, 1)
	if s.App != nil {
		go func() { serveErr <- s.App.Listen(addr) }()
	}
	banner()
	select {
	case err = <-serveErr:
		log.Error("edge stopped", "err", err)
	case <-ctx.Done():
		log.Info("stopping: draining requests, leaving the cluster, closing the store")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(err, s.Close(shutdownCtx))
}

func runDev(ctx context.Context, args []string) error {
	cfg, help, err := config.ParseDev(args)
	if done, err := parsed(help, err); done || err != nil {
		return err
	}
	log := startLogging("dev", &cfg, cfg.Logging)
	s, err := shop.StartDev(ctx, cfg, shop.Options{Members: 1}, log)
	if err != nil {
		return err
	}
	return serve(ctx, s, cfg.HTTPAddr, cfg.ShutdownTimeout, log, func() {
		fmt.Printf("\nphoneshop is running: http://%s\n", displayAddr(cfg.HTTPAddr))
		if cfg.AdminEmail != "" {
			fmt.Printf("log in:  curl -s -X POST http://%s/api/v1/sessions -H 'Content-Type: application/json' -d '{\"email\":\"%s\",\"password\":\"...\"}'\n",
				displayAddr(cfg.HTTPAddr), cfg.AdminEmail)
		} else {
			fmt.Println("no admin account: set PHONESHOP_ADMIN_EMAIL and PHONESHOP_ADMIN_PASSWORD to create one; shoppers register at POST /api/v1/accounts")
		}
		fmt.Println("stop with Ctrl-C")
	})
}

func runNode(ctx context.Context, args []string) error {
	cfg, help, err := config.ParseNode(args)
	if done, err := parsed(help, err); done || err != nil {
		return err
	}
	log := startLogging("node", &cfg, cfg.Logging)
	s, err := shop.StartNode(ctx, cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, s, "", cfg.ShutdownTimeout, log, func() {
		log.Info("node joined the cluster", "member", s.Members[0].ID(), "address", s.Members[0].Address())
		if cfg.HealthAddr != "" {
			go serveHealth(cfg.HealthAddr, s, log)
		}
	})
}

func runEdge(ctx context.Context, args []string) error {
	cfg, help, err := config.ParseEdge(args)
	if done, err := parsed(help, err); done || err != nil {
		return err
	}
	log := startLogging("edge", &cfg, cfg.Logging)
	s, err := shop.StartEdge(ctx, cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, s, cfg.HTTPAddr, cfg.ShutdownTimeout, log, func() {
		log.Info("edge serving", "addr", cfg.HTTPAddr)
		if cfg.HealthAddr != "" {
			go serveHealth(cfg.HealthAddr, s, log)
		}
	})
}

func runMailer(ctx context.Context, args []string) error {
	cfg, help, err := config.ParseMailer(args)
	if done, err := parsed(help, err); done || err != nil {
		return err
	}
	log := startLogging("mailer", &cfg, cfg.Logging)
	s, err := shop.StartMailer(ctx, cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, s, "", cfg.ShutdownTimeout, log, func() {
		log.Info("mailer consuming", "smtp", fmt.Sprintf("%s:%d", cfg.SMTPHost, cfg.SMTPPort))
		if cfg.HealthAddr != "" {
			go serveHealth(cfg.HealthAddr, s, log)
		}
	})
}

// runMigrate applies the schema migrations and exits: a one-shot step before the
// other processes start (compose runs it as a service they wait for).
func runMigrate(ctx context.Context, args []string) error {
	cfg, help, err := config.ParseMigrate(args)
	if done, err := parsed(help, err); done || err != nil {
		return err
	}
	log := startLogging("migrate", &cfg, cfg.Logging)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return shop.Migrate(ctx, cfg, log)
}

// serveHealth answers a supervisor's health checks for a node or an edge: /healthz
// while the process lives, /readyz while it can serve; and Prometheus's /metrics,
// which the API port of these roles does not serve.
func serveHealth(addr string, s *shop.Shop, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if failing := s.Ready(ctx); len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "unavailable", "failing": failing})
			return
		}
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("health listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("health listener stopped", "err", err)
	}
}

// probe is a container health check for an image without curl: it exits 0 when the
// URL answers 200.
func probe(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: phoneshop probe URL")
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", args[0], resp.StatusCode)
	}
	return nil
}

// servePprof serves net/http/pprof on addr, when set, on its own listener.
func servePprof(addr string, log *slog.Logger) {
	if addr == "" {
		return
	}
	go func() {
		log.Info("pprof listening", "addr", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("pprof listener stopped", "err", err)
		}
	}()
}

func displayAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "localhost" + addr
	}
	return addr
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "lib", "go-redis")
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
