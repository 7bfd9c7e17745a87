package edge

import (
	"net/http"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"

	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/grain/call"
	"phoneshop/protos/cartpb"
)

type cartItemResponse struct {
	SKU            string `json:"sku"`
	PhoneID        string `json:"phone_id"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	// LineTotalCents is the line at list price; DiscountCents its discount from
	// the campaign PromoID.
	LineTotalCents int64  `json:"line_total_cents"`
	DiscountCents  int64  `json:"discount_cents"`
	PromoID        string `json:"promo_id,omitempty"`
	// MaxUnitsPerCustomer is the limit per customer of the campaign PromoID,
	// omitted when it has none: a checkout over it is refused.
	MaxUnitsPerCustomer *int64 `json:"max_units_per_customer,omitempty"`
}

type cartResponse struct {
	Items         []cartItemResponse `json:"items"`
	SubtotalCents int64              `json:"subtotal_cents"`
	DiscountCents int64              `json:"discount_cents"`
	TotalCents    int64              `json:"total_cents"`
	Currency      string             `json:"currency"`
}

func (s *server) cartClient(c *fiber.Ctx) *cartpb.CartGrainClient {
	return cartpb.GetCartGrainClient(s.Cluster, caller(c).ID)
}

// knownSKU answers 404 for a SKU the catalog does not sell.
func (s *server) knownSKU(c *fiber.Ctx) (string, error) {
	sku := c.Params("sku")
	if sku == "" || len(sku) > 100 {
		return "", notFound("no such sku")
	}
	vs, err := s.Catalog.Variants(c.UserContext(), []string{sku})
	if err != nil {
		return "", err
	}
	if _, ok := vs[sku]; !ok {
		return "", notFound("no such sku: " + sku)
	}
	return sku, nil
}

func (s *server) getCart(c *fiber.Ctx) error {
	client := s.cartClient(c)
	view, err := call.Do(c.UserContext(), s.Calls, "cart", "Get", func(o ...cluster.GrainCallOption) (*cartpb.CartView, error) {
		return client.Get(&cartpb.GetCartRequest{DeadlineUnixMs: call.Deadline(c.UserContext())}, o...)
	})
	if err != nil {
		return err
	}
	return s.renderCart(c, view)
}

func (s *server) setCartItem(c *fiber.Ctx) error {
	sku, err := s.knownSKU(c)
	if err != nil {
		return err
	}
	var req struct {
		Quantity *int64 `json:"quantity"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Quantity == nil {
		return badRequest("quantity is required")
	}
	if maxQ := s.MaxLineQuantity(); *req.Quantity < 0 || *req.Quantity > maxQ {
		return &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest,
			Message: "quantity must be from 0 to the per-line maximum", Details: map[string]any{"max_quantity": maxQ}}
	}
	return s.setLine(c, sku, *req.Quantity)
}

func (s *server) removeCartItem(c *fiber.Ctx) error {
	sku, err := s.knownSKU(c)
	if err != nil {
		return err
	}
	return s.setLine(c, sku, 0)
}

func (s *server) setLine(c *fiber.Ctx, sku string, qty int64) error {
	client := s.cartClient(c)
	view, err := call.Do(c.UserContext(), s.Calls, "cart", "SetLine", func(o ...cluster.GrainCallOption) (*cartpb.CartView, error) {
		return client.SetLine(&cartpb.SetLineRequest{Sku: sku, Quantity: qty, DeadlineUnixMs: call.Deadline(c.UserContext())}, o...)
	})
	if err != nil {
		return err
	}
	return s.renderCart(c, view)
}

func (s *server) clearCart(c *fiber.Ctx) error {
	client := s.cartClient(c)
	_, err := call.Do(c.UserContext(), s.Calls, "cart", "Clear", func(o ...cluster.GrainCallOption) (*cartpb.CartView, error) {
		return client.Clear(&cartpb.ClearCartRequest{DeadlineUnixMs: call.Deadline(c.UserContext())}, o...)
	})
	if err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// renderCart prices the cart's lines at the catalog's current prices and the
// discounts of the live campaigns, as checkout will (promo.Price).
func (s *server) renderCart(c *fiber.Ctx, view *cartpb.CartView) error {
	skus := make([]string, len(view.Lines))
	for i, l := range view.Lines {
		skus[i] = l.Sku
	}
	variants, err := s.Catalog.Variants(c.UserContext(), skus)
	if err != nil {
		return err
	}
	resp := cartResponse{Items: []cartItemResponse{}, Currency: catalog.Currency}
	var toPrice []promo.PriceLine
	for _, l := range view.Lines {
		v, ok := variants[l.Sku]
		if !ok {
			continue // no longer sold; checkout refuses it too
		}
		line := cartItemResponse{SKU: l.Sku, PhoneID: v.PhoneID, Name: v.DisplayName(), Quantity: l.Quantity,
			UnitPriceCents: v.PriceCents, LineTotalCents: v.PriceCents * l.Quantity}
		resp.Items = append(resp.Items, line)
		toPrice = append(toPrice, promo.PriceLine{SKU: l.Sku, Brand: v.Brand, ListCents: v.PriceCents, Quantity: l.Quantity})
	}
	for i, p := range promo.Price(s.Campaigns.Live(), toPrice, s.now(), nil) {
		resp.Items[i].DiscountCents, resp.Items[i].PromoID = p.DiscountCents, p.PromoID
		if p.MaxUnitsPerCustomer > 0 {
			limit := p.MaxUnitsPerCustomer
			resp.Items[i].MaxUnitsPerCustomer = &limit
		}
	}
	for _, line := range resp.Items {
		resp.SubtotalCents += line.LineTotalCents
		resp.DiscountCents += line.DiscountCents
	}
	resp.TotalCents = resp.SubtotalCents - resp.DiscountCents
	return c.JSON(resp)
}
