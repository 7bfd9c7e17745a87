package edge_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"

	"phoneshop/config"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/shoptest"
)

// The hot reads of issue 12, measured through the whole Fiber app (every
// middleware, authentication, the catalog's caches) but without sockets, so that
// the figure is the edge's own cost per request: an authenticated request
// (GET /api/v1/me, whose handler does nothing but authenticate), a phone's details
// and a catalog page. "redis" is production's cache (Redis for hot reads, as an
// edge has it); "memory" is dev's in-process cache.
//
//	go test -run '^$' -bench HotReads -count 3 ./edge/
func BenchmarkHotReads(b *testing.B) {
	for _, cacheKind := range []string{"redis", "memory"} {
		b.Run(cacheKind, func(b *testing.B) {
			var opts []shoptest.Option
			if cacheKind == "redis" {
				addr, prefix := dbtest.Redis(b)
				opts = append(opts, func(c *config.Dev) { c.RedisAddr, c.RedisPrefix = addr, prefix })
			}
			h := shoptest.Start(b, 1, opts...)
			token, _ := h.Shopper()
			handler := h.Shop.App.Handler()
			for _, r := range []struct {
				name, path, token string
			}{
				{"authenticated", "/api/v1/me", token},
				{"phone_detail", "/api/v1/phones/google-pixel-9", ""},
				{"catalog_page", "/api/v1/phones?page_size=20", ""},
			} {
				b.Run(r.name, func(b *testing.B) {
					benchmarkHandler(b, handler, r.path, r.token)
				})
			}
		})
	}
}

// benchmarkHandler sends GET path to handler from 16 goroutines per core (many
// shoppers at once, each waiting on its cache round trips) and fails on any
// answer but 200.
func benchmarkHandler(b *testing.B, handler fasthttp.RequestHandler, path, token string) {
	b.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(http.MethodGet)
	req.SetRequestURI(path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	// One warm-up request fills the caches, as a shop in service has them.
	var warm fasthttp.RequestCtx
	warm.Init(&req, remote, nil)
	handler(&warm)
	if code := warm.Response.StatusCode(); code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, code, warm.Response.Body())
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Init(&req, remote, nil)
			handler(&ctx)
			if code := ctx.Response.StatusCode(); code != http.StatusOK {
				b.Errorf("GET %s: %d %s", path, code, ctx.Response.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
