package baseline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	goredis "github.com/redis/go-redis/v9"

	"phoneshop/edge/strictjson"
)

// httpOKBody is the whole answer of GET /baseline/http, built once so that route
// measures Fiber and the network, not JSON encoding.
var httpOKBody = []byte(`{"status":"ok"}`)

// unitPriceCents is the price every baseline order records: the baselines have no
// catalogue, and a constant keeps the row the same width as the shop's.
const unitPriceCents = 79900

// Limits of checkoutRequest's fields, from the columns that store them.
const (
	maxSKULen = 150
	maxIDLen  = 64
)

func (s *Server) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           time.Minute,
	})
	app.Get("/baseline/http", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(httpOKBody)
	})
	app.Post("/baseline/classic/checkout", s.classicCheckout)
	for name, rdb := range s.redis {
		app.Post("/baseline/"+string(name)+"/checkout", func(c *fiber.Ctx) error {
			return s.serveCheckout(c, string(name), func(ctx context.Context, req checkoutRequest) (outcome, error) {
				return s.checkoutRedis(ctx, rdb, req)
			})
		})
	}
	return app
}

// checkoutRequest is the body both checkouts accept.
type checkoutRequest struct {
	SKU       string `json:"sku"`
	AccountID string `json:"account_id"`
	OrderID   string `json:"order_id"`
	Quantity  int64  `json:"quantity"`
}

func (r checkoutRequest) validate() error {
	switch {
	case r.SKU == "" || len(r.SKU) > maxSKULen:
		return badRequest(fmt.Sprintf("sku must have 1 to %d bytes", maxSKULen))
	case r.AccountID == "" || len(r.AccountID) > maxIDLen:
		return badRequest(fmt.Sprintf("account_id must have 1 to %d bytes", maxIDLen))
	case r.OrderID == "" || len(r.OrderID) > maxIDLen:
		return badRequest(fmt.Sprintf("order_id must have 1 to %d bytes", maxIDLen))
	case r.Quantity < 1 || r.Quantity > math.MaxInt32:
		return badRequest(fmt.Sprintf("quantity must be between 1 and %d", math.MaxInt32))
	}
	return nil
}

// outcome is how a checkout ended, when it did not fail.
type outcome int

const (
	placed   outcome = iota // a new order took the units: 201
	replayed                // the order id was already placed: 200, nothing changed
	soldOut                 // not enough units: 409
)

var (
	errOutOfStock  = &apiError{Status: http.StatusConflict, Code: "out_of_stock", Message: "not enough units in stock"}
	errUnavailable = &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the order could not be stored; retry with the same order_id"}
)

func (s *Server) classicCheckout(c *fiber.Ctx) error {
	return s.serveCheckout(c, "classic", s.checkoutClassic)
}

// serveCheckout decodes and validates the body, runs checkout under the request's
// deadline and writes the answer.
func (s *Server) serveCheckout(c *fiber.Ctx, way string, checkout func(context.Context, checkoutRequest) (outcome, error)) error {
	var req checkoutRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	result, err := checkout(ctx, req)
	if err != nil {
		s.log.Error("baseline checkout failed", "way", way, "order_id", req.OrderID, "sku", req.SKU, "err", err)
		return errUnavailable
	}
	switch result {
	case placed:
		return c.Status(http.StatusCreated).JSON(fiber.Map{"id": req.OrderID})
	case replayed:
		return c.Status(http.StatusOK).JSON(fiber.Map{"id": req.OrderID})
	default:
		return errOutOfStock
	}
}

// checkoutClassic is the classic checkout: one transaction takes the units with a
// guarded UPDATE (the row lock serialises buyers of one SKU) and inserts the order;
// MySQL alone is the truth, so nothing is lost or oversold whatever crashes.
func (s *Server) checkoutClassic(ctx context.Context, req checkoutRequest) (outcome, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	// After Commit this is a no-op; on every other path it gives the units back.
	defer tx.Rollback()

	res, err := tx.ExecContext(ctx,
		`UPDATE baseline_stock SET qty = qty - ? WHERE sku = ? AND qty >= ?`,
		req.Quantity, req.SKU, req.Quantity)
	if err != nil {
		return 0, fmt.Errorf("take stock: %w", err)
	}
	taken, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("take stock: %w", err)
	}
	if taken == 0 {
		if err := tx.Rollback(); err != nil {
			return 0, fmt.Errorf("rollback: %w", err)
		}
		// A retry of an order placed before the SKU sold out is a replay, not a
		// refusal: look only on this path, so a placed order costs nothing extra.
		exists, err := s.orderExists(ctx, req.OrderID)
		if err != nil {
			return 0, err
		}
		if exists {
			return replayed, nil
		}
		return soldOut, nil
	}
	if err := s.insertOrder(ctx, tx, req); err != nil {
		if isDuplicate(err) {
			return replayed, nil // the deferred rollback returns the units
		}
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return placed, nil
}

// reserveScript takes ARGV[1] units of the stock key KEYS[1] when it holds that
// many, answering what is left, and -1 (leaving the key alone) when it does not or
// when the key is missing. Redis runs a script atomically, so two buyers cannot
// both take the last unit.
const reserveScript = `
local stock = tonumber(redis.call('GET', KEYS[1]))
local want = tonumber(ARGV[1])
if stock == nil or stock < want then
	return -1
end
return redis.call('DECRBY', KEYS[1], want)
`

// checkoutRedis is the Redis way, on the Redis server rdb: the stock lives in
// Redis, where a Lua script takes the units without touching MySQL, and only the
// order row goes to MySQL (in autocommit). Sold-out requests, the bulk of a flash
// sale, never reach MySQL.
//
// Its known weakness is why the shop does not do this: Redis is not the durable
// truth. A crash (or a lost connection) between the Redis decrement and the MySQL
// insert loses those units for good, since nothing records that they were taken
// for an order that never existed; so does a Redis failover or restart that drops
// the latest writes, in the other direction (units sold twice), unless that Redis
// fsyncs every write before answering (DurableRedis): a disk sync per decrement,
// which still leaves the first case. The INCRBY below only repairs the failures
// this process lives to see. Its idempotency is weaker too: a replay after the SKU
// sold out answers 409, because checking MySQL for the order id would send every
// refusal to MySQL and defeat the point.
func (s *Server) checkoutRedis(ctx context.Context, rdb *goredis.Client, req checkoutRequest) (outcome, error) {
	key := s.stockKey(req.SKU)
	left, err := s.reserve.Run(ctx, rdb, []string{key}, req.Quantity).Int64()
	if err != nil {
		return 0, fmt.Errorf("reserve in Redis: %w", err)
	}
	if left < 0 {
		return soldOut, nil
	}
	err = s.insertOrder(ctx, s.db, req)
	if err == nil {
		return placed, nil
	}
	// The request's context may be what failed: put the units back regardless.
	restoreCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if rerr := rdb.IncrBy(restoreCtx, key, req.Quantity).Err(); rerr != nil {
		return 0, fmt.Errorf("insert order: %w; and %d units of %s are lost: give back in Redis: %w",
			err, req.Quantity, req.SKU, rerr)
	}
	if isDuplicate(err) {
		return replayed, nil
	}
	return 0, fmt.Errorf("insert order: %w", err)
}

// execer is what insertOrder needs of a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Server) insertOrder(ctx context.Context, db execer, req checkoutRequest) error {
	_, err := db.ExecContext(ctx,
		`INSERT INTO baseline_orders (id, account_id, sku, quantity, price_cents, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		req.OrderID, req.AccountID, req.SKU, req.Quantity, unitPriceCents, time.Now().UnixMilli())
	return err
}

func (s *Server) orderExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM baseline_orders WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up order %s: %w", id, err)
	}
	return true, nil
}

// apiError is an error answer in the shop's shape: {"error":{"code","message"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

// errorHandler gives every error answer, Fiber's own included, the shop's shape.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var ae *apiError
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{Status: fe.Code, Code: fiberErrorCode(fe.Code), Message: fe.Message}
	default:
		s.log.Error("baseline request failed", "method", c.Method(), "path", c.Path(), "err", err)
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	return c.Status(ae.Status).JSON(fiber.Map{"error": ae})
}

func fiberErrorCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 400 && status < 500 {
		return "invalid_request"
	}
	return "internal"
}

// decodeStrict reads the request body into v with the shop's edge's rules
// (edge/strictjson), so both pay the same decoding cost.
func decodeStrict(c *fiber.Ctx, v any) error {
	if err := strictjson.Decode(c.Get(fiber.HeaderContentType), c.Body(), v); err != nil {
		return badRequest(err.Error())
	}
	return nil
}
