package edge

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"phoneshop/catalog"
)

// The catalog's hot reads — a phone's details, a page of the search, the brands —
// are answered from JSON rendered once and held in process (Deps.PhoneViews and
// PageViews), as long as the catalog is unchanged on every edge: a change of the
// catalog or of a phone's stock state replaces the views, as it replaces the
// cached reads they are built from. Campaign prices change by the clock and by
// the promo board, not with the catalog, so a view holds the response without
// them; while a live campaign discounts one of its variants, the response is
// rendered again from the view's phone or page with the prices laid over, by the
// same code as always (toPhoneResponse, toSearchResponse). Views are keyed by the
// low-stock threshold too, a live setting that changes the stock states shown.

// phoneView is a phone's details as held: the phone, and its response with no
// campaign prices.
type phoneView struct {
	phone catalog.Phone
	body  []byte
}

// pageView is a page of the search as held: the page, and its response with no
// campaign prices.
type pageView struct {
	page catalog.Page
	body []byte
}

// view returns the value views hold under key, building it with build; with no
// views, it builds it.
func (s *server) view(ctx context.Context, views CatalogViews, key string, build func(context.Context) (any, error)) (any, error) {
	if views == nil {
		return build(ctx)
	}
	return views.View(ctx, key, build)
}

// sendJSON answers body as c.JSON answers a value: the same bytes, the same
// Content-Type. body is held by a view and must never be changed.
func sendJSON(c *fiber.Ctx, body []byte) error {
	c.Response().SetBodyRaw(body)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}
