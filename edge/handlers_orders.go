package edge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"

	"phoneshop/actors/order"
	"phoneshop/grain/call"
	"phoneshop/protos/cartpb"
	"phoneshop/protos/orderpb"
)

type addressBody struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

type orderResponse struct {
	ID              string             `json:"id"`
	Status          string             `json:"status"`
	Items           []cartItemResponse `json:"items"`
	SubtotalCents   int64              `json:"subtotal_cents"`
	DiscountCents   int64              `json:"discount_cents"`
	TotalCents      int64              `json:"total_cents"`
	Currency        string             `json:"currency"`
	ShippingAddress addressBody        `json:"shipping_address"`
	CreatedAt       string             `json:"created_at"`
	UpdatedAt       string             `json:"updated_at"`
}

var (
	idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
	countryPattern        = regexp.MustCompile(`^[A-Z]{2}$`)
	postalCodePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]{0,14}$`)
)

func (a *addressBody) validate() error {
	fields := []struct {
		name     string
		value    *string
		required bool
		max      int
	}{
		{"name", &a.Name, true, 100}, {"line1", &a.Line1, true, 200}, {"line2", &a.Line2, false, 200},
		{"city", &a.City, true, 100}, {"postal_code", &a.PostalCode, true, 16}, {"country", &a.Country, true, 2},
	}
	for _, f := range fields {
		*f.value = strings.TrimSpace(*f.value)
		n := utf8.RuneCountInString(*f.value)
		if f.required && n == 0 {
			return badRequest("shipping_address." + f.name + " is required")
		}
		if n > f.max {
			return badRequest("shipping_address." + f.name + " is too long")
		}
		if strings.ContainsFunc(*f.value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return badRequest("shipping_address." + f.name + " has control characters")
		}
	}
	if !countryPattern.MatchString(a.Country) {
		return badRequest("shipping_address.country must be an ISO 3166-1 alpha-2 code such as US")
	}
	if !postalCodePattern.MatchString(a.PostalCode) {
		return badRequest("shipping_address.postal_code has characters a postal code does not")
	}
	return nil
}

func (s *server) checkout(c *fiber.Ctx) (err error) {
	defer func() { s.Metrics.observeCheckout(c.Response().StatusCode(), err) }()
	key := c.Get("Idempotency-Key")
	if !idempotencyKeyPattern.MatchString(key) {
		return badRequest("header Idempotency-Key is required: 1 to 128 printable ASCII characters")
	}
	var req struct {
		ShippingAddress *addressBody `json:"shipping_address"`
		// ExpectedTotalCents is the total the shopper was shown: a precondition,
		// not part of what the order is, so it is left out of the fingerprint.
		ExpectedTotalCents *int64 `json:"expected_total_cents"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.ShippingAddress == nil {
		return badRequest("shipping_address is required")
	}
	if req.ExpectedTotalCents != nil && *req.ExpectedTotalCents < 0 {
		return badRequest("expected_total_cents must be an integer of at least 0")
	}
	if err := req.ShippingAddress.validate(); err != nil {
		return err
	}
	// The request's fingerprint is its normalised body: the same key with another
	// address is a different request.
	canonical, _ := json.Marshal(req.ShippingAddress)
	sum := sha256.Sum256(canonical)
	a := req.ShippingAddress
	checkout := &cartpb.CheckoutRequest{
		OrderId:     order.ID(caller(c).ID, key),
		RequestHash: hex.EncodeToString(sum[:]),
		ShippingAddress: &orderpb.Address{Name: a.Name, Line1: a.Line1, Line2: a.Line2,
			City: a.City, PostalCode: a.PostalCode, Country: a.Country},
		DeadlineUnixMs: call.Deadline(c.UserContext()),
	}
	if req.ExpectedTotalCents != nil {
		checkout.HasExpectedTotal, checkout.ExpectedTotalCents = true, *req.ExpectedTotalCents
	}
	client := s.cartClient(c)
	view, err := call.Do(c.UserContext(), s.Calls, "cart", "Checkout", func(o ...cluster.GrainCallOption) (*orderpb.OrderView, error) {
		return client.Checkout(checkout, o...)
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if view.Replayed {
		status = http.StatusOK
	}
	return c.Status(status).JSON(toOrderResponse(view.Order))
}

// getOrder answers from the store, never from the order's grain: the order as its
// last durable write left it is what the grain would answer (it answers only after
// a write), and a read, above all of an id that names nothing, activates no grain.
func (s *server) getOrder(c *fiber.Ctx) error {
	o, err := s.knownOrder(c, caller(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(toOrderResponseFromDomain(o))
}

// knownOrder reads the order of the route's :id from the store; an id of another
// shape, one that names no order, or (accountID set) another account's order is 404.
func (s *server) knownOrder(c *fiber.Ctx, accountID string) (*order.Order, error) {
	id := c.Params("id")
	if !validOrderID(id) {
		return nil, notFound("order not found")
	}
	o, err := s.Orders.OrderByID(c.UserContext(), id)
	if errors.Is(err, order.ErrNotFound) || (err == nil && accountID != "" && o.AccountID != accountID) {
		return nil, notFound("order not found")
	}
	return o, err
}

func (s *server) cancelOrder(c *fiber.Ctx) error {
	return s.orderCommand(c, "Cancel", caller(c).ID, (*orderpb.OrderGrainClient).Cancel)
}

func (s *server) shipOrder(c *fiber.Ctx) error {
	return s.orderCommand(c, "Ship", "", (*orderpb.OrderGrainClient).Ship)
}

func (s *server) deliverOrder(c *fiber.Ctx) error {
	return s.orderCommand(c, "Deliver", "", (*orderpb.OrderGrainClient).Deliver)
}

type orderMethod func(*orderpb.OrderGrainClient, *orderpb.OrderCommand, ...cluster.GrainCallOption) (*orderpb.OrderView, error)

// orderCommand sends a lifecycle command; accountID is empty for operators, who may
// act on any order.
func (s *server) orderCommand(c *fiber.Ctx, name, accountID string, method orderMethod) error {
	o, err := s.knownOrder(c, accountID)
	if err != nil {
		return err
	}
	client := orderpb.GetOrderGrainClient(s.Cluster, o.ID)
	view, err := call.Do(c.UserContext(), s.Calls, "order", name, func(o ...cluster.GrainCallOption) (*orderpb.OrderView, error) {
		return method(client, &orderpb.OrderCommand{AccountId: accountID, DeadlineUnixMs: call.Deadline(c.UserContext())}, o...)
	})
	if err != nil {
		return err
	}
	return c.JSON(toOrderResponse(view.Order))
}

// orderIDPattern is the one shape order.ID mints. Anything else names no order, and
// is refused before a grain call: a call would activate a grain, which loads from
// the store, for nothing.
var orderIDPattern = regexp.MustCompile(`^ord_[0-9a-f]{24}$`)

func validOrderID(id string) bool {
	return orderIDPattern.MatchString(id)
}

func (s *server) listOrders(c *fiber.Ctx) error {
	size, err := pageSize(c)
	if err != nil {
		return err
	}
	var after *order.ListCursor
	if token := c.Query("page_token"); token != "" {
		if after, err = parseOrderPageToken(token); err != nil {
			return err
		}
	}
	page, err := s.Orders.ListOrders(c.UserContext(), caller(c).ID, size, after)
	if err != nil {
		return err
	}
	items := make([]orderResponse, len(page.Orders))
	for i, o := range page.Orders {
		items[i] = toOrderResponseFromDomain(o)
	}
	next := ""
	if page.Next != nil {
		if next, err = encodeOrderPageToken(*page.Next); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"items": items, "next_page_token": next})
}

// encodeOrderPageToken makes the opaque page token that continues an order history
// after c.
func encodeOrderPageToken(c order.ListCursor) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		// Only a time outside years 0-9999 fails: an error, since an empty
		// token would tell the client the history ended here.
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// parseOrderPageToken reads a token made by encodeOrderPageToken. A token whose
// order id is not of the shape the shop mints was not made by it.
func parseOrderPageToken(token string) (*order.ListCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	var c order.ListCursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || !validOrderID(c.ID) {
		return nil, badRequest("malformed page_token")
	}
	return &c, nil
}

func toOrderResponse(st *orderpb.OrderState) orderResponse {
	return toOrderResponseFromDomain(order.FromState(st))
}

func toOrderResponseFromDomain(o *order.Order) orderResponse {
	r := orderResponse{
		ID: o.ID, Status: string(o.ShopperStatus()), Items: make([]cartItemResponse, len(o.Lines)),
		DiscountCents: o.DiscountCents(), TotalCents: o.TotalCents, Currency: o.Currency,
		ShippingAddress: addressBody{Name: o.Address.Name, Line1: o.Address.Line1, Line2: o.Address.Line2,
			City: o.Address.City, PostalCode: o.Address.PostalCode, Country: o.Address.Country},
		CreatedAt: o.CreatedAt.UTC().Format(time.RFC3339Nano),
		UpdatedAt: o.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
	for i, l := range o.Lines {
		r.Items[i] = cartItemResponse{SKU: l.SKU, PhoneID: l.PhoneID, Name: l.Name, Quantity: l.Quantity,
			UnitPriceCents: l.UnitPriceCents, LineTotalCents: l.Subtotal(), DiscountCents: l.DiscountCents, PromoID: l.PromoID}
		r.SubtotalCents += l.Subtotal()
	}
	return r
}
