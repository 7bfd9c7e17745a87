// Package edge is the shop's HTTP edge on Fiber: it validates every request, turns it
// into grain calls or store reads, and answers in the shape of API.md. It holds no
// state of its own.
package edge

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"phoneshop/account"
	"phoneshop/actors/order"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/grain/call"
	"phoneshop/notify/delivery"
	"phoneshop/protos/promopb"
)

// headerRequestID is the header every response carries (echoed when the client sent one).
const headerRequestID = "X-Request-Id"

//go:embed openapi.json
var openAPI []byte

// OrderLister reads orders from the store: an account's order history (newest
// first), a page of up to limit orders after the cursor with the cursor that
// continues it; and one order by id (order.ErrNotFound when the id names none), which
// every order route asks before it calls a grain, so that an id that names nothing
// costs no activation.
type OrderLister interface {
	ListOrders(ctx context.Context, accountID string, limit int, after *order.ListCursor) (order.HistoryPage, error)
	OrderByID(ctx context.Context, id string) (*order.Order, error)
	ListAllOrders(ctx context.Context, q order.OpsQuery) (order.OpsPage, error)
}

// PromoLister reads the campaign listing (newest first), one campaign's listing
// (found is false for an id that names none: asked before a campaign's grain is
// called) and the campaigns' e-mail counts from the store.
type PromoLister interface {
	ListPromos(ctx context.Context, q promo.ListQuery) ([]promo.Listing, error)
	PromoListing(ctx context.Context, id string) (l promo.Listing, found bool, err error)
	PromoMailStats(ctx context.Context, ids []string) (map[string]delivery.CampaignStats, error)
}

// CatalogViews hold values built from catalog reads in process
// (persistence/cache.Views): View returns the value held under key for the
// catalog as it is now, or builds it with build and holds it.
type CatalogViews interface {
	View(ctx context.Context, key string, build func(context.Context) (any, error)) (any, error)
}

// Deps is what the edge needs.
type Deps struct {
	Accounts *account.Service
	// Unsubscribe reads the tokens of unsubscribe links (nil: no link works).
	Unsubscribe *account.UnsubscribeTokens
	// Verification reads the tokens of e-mail verification links (nil: no link
	// works); ResendVerificationAfter is the least time between two verification
	// mails an account asks for.
	Verification            *account.VerificationTokens
	ResendVerificationAfter time.Duration
	Catalog                 *catalog.Service
	// PhoneViews and PageViews hold the rendered JSON of phone details and of
	// catalog pages in process, for as long as the catalog does not change on any
	// edge (nil: rendered for every request).
	PhoneViews CatalogViews
	PageViews  CatalogViews
	Orders     OrderLister
	Promos     PromoLister
	// MailQueues counts the mail queues and sends their dead letters back (nil:
	// the mail routes answer 503); Outbox tells the outbox's backlog.
	MailQueues MailQueues
	Outbox     OutboxReader
	// Campaigns is this process's view of the live campaigns: what prices the
	// catalog and carts.
	Campaigns *promo.Board
	// Now is the clock campaigns are read by (time.Now when nil).
	Now     func() time.Time
	Cluster *cluster.Cluster
	// Members lists the cluster's members (member.Client.Members or
	// member.Member.Members: never MemberList.Members, which reads without a lock).
	Members func() []*cluster.Member
	Calls   call.Policy
	// Ready reports the parts that cannot serve now (empty when ready).
	Ready func(ctx context.Context) []string
	// MaxLineQuantity, LowStockThreshold and MaintenanceMode are read per request
	// (live settings).
	MaxLineQuantity   func() int64
	LowStockThreshold func() int64
	MaintenanceMode   func() bool
	RequestTimeout    time.Duration
	BodyLimit         int
	// Limits defend sign-up, login and checkout against bursts and abuse.
	Limits Limits
	// ServeMetrics serves /metrics on the API's port (dev). Nodes and edges serve
	// it on their health listener instead, which the load balancer does not expose.
	ServeMetrics bool
	Registry     *prometheus.Registry
	// Metrics count the edge's HTTP requests, GrainCalls the process's grain calls:
	// the ops dashboard shows both. CacheDegraded says whether hot reads go to the
	// store because the cache server is unreachable (nil: never).
	Metrics       *Metrics
	GrainCalls    *call.Metrics
	CacheDegraded func() bool
	Logger        *slog.Logger
}

type server struct {
	Deps
	accounts *account.Service
	log      *slog.Logger
	// encodeJSON is the app's JSON encoder, which c.JSON uses: what a view holds
	// is what c.JSON would send.
	encodeJSON func(any) ([]byte, error)
}

func (s *server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// New returns the edge's Fiber app with every route of API.md.
func New(d Deps) *fiber.App {
	s := &server{Deps: d, accounts: d.Accounts, log: d.Logger}
	app := fiber.New(fiber.Config{
		// fasthttp answers a body over its limit before reading it and closes the
		// connection, so a client still sending gets a reset, not the 413. Its cap is
		// twice the API's limit, which bodyLimit enforces once the body is read: a
		// body a little over the limit gets the API's 413, and no request makes
		// the server hold more than twice the limit.
		BodyLimit:             transportBodyLimit(d.BodyLimit),
		ErrorHandler:          errorHandler(d.Logger),
		DisableStartupMessage: true,
		// Values taken from a request outlive it (grain calls, logs): copy them.
		Immutable: true,
		// fasthttp's graceful shutdown waits for a keep-alive connection until its
		// read deadline, so ReadTimeout also bounds how long a stop drains: a
		// client has 5 s to send a request of at most BodyLimit bytes.
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 15 * time.Second,
		IdleTimeout:  time.Minute,
	})
	s.encodeJSON = app.Config().JSONEncoder
	app.Use(requestid.New(requestid.Config{Header: headerRequestID}))
	app.Use(s.observe)
	app.Use(recover.New())
	app.Use(plainBody)
	app.Use(s.bodyLimit)
	app.Use(s.deadline)
	app.Use(s.maintenance)

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	if d.ServeMetrics {
		app.Get("/metrics", MetricsHandler(d.Registry))
	}

	v1 := app.Group("/api/v1")
	v1.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(openAPI)
	})
	v1.Post("/accounts", s.limit(d.Limits.Register), s.register)
	v1.Post("/sessions", s.limit(d.Limits.Login), s.login)
	v1.Delete("/sessions/current", s.authenticate, s.logout)
	v1.Get("/me", s.authenticate, s.me)
	v1.Put("/me/preferences", s.authenticate, s.limitAccount(d.Limits.Preferences), s.setPreferences)
	v1.Post("/me/verification", s.authenticate, s.requestVerification)

	v1.Get("/phones", s.searchPhones)
	v1.Get("/phones/:id", s.phone)
	v1.Get("/brands", s.brands)

	cart := v1.Group("/cart", s.authenticate)
	cart.Get("", s.getCart)
	cart.Delete("", s.clearCart)
	cart.Put("/items/:sku", s.setCartItem)
	cart.Delete("/items/:sku", s.removeCartItem)

	orders := v1.Group("/orders", s.authenticate)
	orders.Post("", s.limit(d.Limits.Checkout), s.checkout)
	orders.Get("", s.listOrders)
	orders.Get("/:id", s.getOrder)
	orders.Post("/:id/cancel", s.cancelOrder)

	ops := v1.Group("/ops", s.authenticate, requireRole(account.RoleOps))
	ops.Get("/inventory/:sku", s.stockLevel)
	ops.Put("/inventory/:sku", s.receiveStock)
	ops.Get("/orders", s.listAllOrders)
	ops.Post("/orders/:id/ship", s.shipOrder)
	ops.Post("/orders/:id/deliver", s.deliverOrder)
	ops.Post("/orders/:id/resume", s.resumeOrder)
	ops.Get("/cluster", s.clusterView)
	ops.Get("/accounts", s.findAccount)
	ops.Get("/mail", s.mailStatus)
	ops.Post("/mail/dead-letters/redrive", s.redriveDeadLetters)
	ops.Put("/accounts/:id/roles", requireRole(account.RoleAdmin), s.setRoles)

	// The public list of active campaigns first: the group below would ask it
	// for a token.
	v1.Get("/promos/active", s.activePromos)
	promos := v1.Group("/promos", s.authenticate, requireRole(account.RoleMarketing))
	promos.Post("", s.createPromo)
	promos.Get("", s.listPromos)
	promos.Get("/:id", s.getPromo)
	promos.Patch("/:id", s.editPromo)
	promos.Post("/:id/launch", s.movePromo("Launch", (*promopb.PromoGrainClient).Launch))
	promos.Post("/:id/pause", s.movePromo("Pause", (*promopb.PromoGrainClient).Pause))
	promos.Post("/:id/end", s.movePromo("End", (*promopb.PromoGrainClient).End))

	app.Get("/u/:token", s.limit(d.Limits.Unsubscribe), s.unsubscribeForm)
	app.Post("/u/:token", s.limit(d.Limits.Unsubscribe), s.unsubscribe)
	app.Get("/verify/:token", s.limit(d.Limits.Unsubscribe), s.verifyForm)
	app.Post("/verify/:token", s.limit(d.Limits.Unsubscribe), s.verify)

	app.Get("/ops", dashboardPage)
	app.Get("/ops/:file", dashboardAsset)

	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return app
}

// transportBodyLimit is the most the server reads of a request body; beyond it the
// connection is reset.
func transportBodyLimit(apiLimit int) int {
	return 2 * max(apiLimit, 1)
}

// plainBody refuses a request whose body is encoded (a Content-Encoding other than
// identity) before anything reads the body. Fiber's Ctx.Body, and what is built on it
// (BodyParser, form values), inflates gzip, br, deflate and zstd bodies without a
// limit: 3.5 KB of "gzip, gzip" became 2 GiB in memory. The shop's clients send
// plain JSON and forms, so nothing is lost by refusing, and no decoder runs at all.
// Handlers read the body as sent (rawBody), never through Ctx.Body.
func plainBody(c *fiber.Ctx) error {
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderContentEncoding) {
		for _, coding := range strings.Split(string(v), ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedEncoding,
					Message: "request bodies must not be encoded: send them without Content-Encoding (or identity)"}
			}
		}
	}
	return c.Next()
}

// rawBody is the request body as it came over the wire. plainBody has refused every
// encoded one, so this is also the body the client meant.
func rawBody(c *fiber.Ctx) []byte { return c.Request().Body() }

// bodyLimit answers 413 to a body over the API's limit, after reading it, so that the
// client receives the answer.
func (s *server) bodyLimit(c *fiber.Ctx) error {
	if len(rawBody(c)) > s.BodyLimit {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codePayloadTooLarge,
			Message: fmt.Sprintf("request body over %d bytes", s.BodyLimit)}
	}
	return c.Next()
}

// maintenance refuses every change while the shop is read-only, except logging in
// and out and unsubscribing.
func (s *server) maintenance(c *fiber.Ctx) error {
	if s.MaintenanceMode == nil || !s.MaintenanceMode() {
		return c.Next()
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	// Logging in and out: operators must get in to end maintenance. Unsubscribing:
	// a mail client's one-click POST (RFC 8058) cannot come back later.
	if strings.HasPrefix(c.Path(), "/api/v1/sessions") || strings.HasPrefix(c.Path(), "/u/") {
		return c.Next()
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: maintenanceRetryAfter,
		Message: "the shop is in read-only maintenance; try again later"}
}

// maintenanceRetryAfter is how long a client is asked to wait out maintenance.
const maintenanceRetryAfter = 30 * time.Second

// MetricsHandler serves the registry in Prometheus's text format.
func MetricsHandler(r *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
}

// deadline gives every request a deadline, passed on as the grain-call timeout.
func (s *server) deadline(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// observe writes the access log line and the request metrics.
func (s *server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(http.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	if status == http.StatusNotFound && route == "/" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	s.Metrics.observeRequest(c.Method(), route, status, elapsed)
	s.log.Info("http", "method", c.Method(), "path", loggedPath(c), "route", route, "status", status,
		"duration_ms", float64(elapsed.Microseconds())/1000, "request_id", requestID(c))
	return nil
}

// secretPaths are the paths whose last segment is a credential (the tokens of the
// links the shop mails): logs show the prefix only, so that whoever reads the logs
// cannot unsubscribe or verify anyone.
var secretPaths = []string{"/u/", "/verify/"}

// loggedPath is the request's path as logs show it.
func loggedPath(c *fiber.Ctx) string {
	p := c.Path()
	for _, prefix := range secretPaths {
		if strings.HasPrefix(p, prefix) {
			return prefix + "-"
		}
	}
	return p
}

func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(requestid.ConfigDefault.ContextKey).(string); ok {
		return id
	}
	return string(c.Response().Header.Peek(headerRequestID))
}

func (s *server) readyz(c *fiber.Ctx) error {
	failing := s.Ready(c.UserContext())
	if len(failing) > 0 {
		retryAfterHeader(c, time.Second)
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "failing": failing})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// pageSize reads ?page_size= (default 20, 1..100).
func pageSize(c *fiber.Ctx) (int, error) {
	raw := c.Query("page_size")
	if raw == "" {
		return catalog.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > catalog.MaxPageSize {
		return 0, badRequest("page_size must be an integer from 1 to 100")
	}
	return n, nil
}
