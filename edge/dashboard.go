package edge

import (
	"embed"
	"path"

	"github.com/gofiber/fiber/v2"
)

// dashboardFiles are the ops dashboard: one page, its script and its styles. The
// page needs no token; the data it reads (GET /api/v1/ops/cluster) does.
//
//go:embed ops/index.html ops/ops.js ops/ops.css
var dashboardFiles embed.FS

var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// dashboardPolicy lets the page load only its own script and styles and talk only
// to this edge; nothing comes from elsewhere and nothing frames it.
const dashboardPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func dashboardPage(c *fiber.Ctx) error { return sendDashboardFile(c, "index.html") }

func dashboardAsset(c *fiber.Ctx) error {
	name := c.Params("file")
	if name == "index.html" {
		return fiber.ErrNotFound // the page lives at /ops
	}
	return sendDashboardFile(c, name)
}

func sendDashboardFile(c *fiber.Ctx, name string) error {
	body, err := dashboardFiles.ReadFile("ops/" + name)
	if err != nil {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderContentType, dashboardTypes[path.Ext(name)])
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentSecurityPolicy, dashboardPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Send(body)
}
