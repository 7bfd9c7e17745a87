package edge

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"phoneshop/account"
	"phoneshop/actors/promo"
	"phoneshop/catalog"
)

type accountResponse struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	PromoEmails bool     `json:"promo_emails"`
	// EmailVerified: the owner followed the link of a verification mail.
	EmailVerified bool `json:"email_verified"`
}

func toAccountResponse(a account.Account) accountResponse {
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	return accountResponse{ID: a.ID, Email: a.Email, Name: a.Name, Roles: roles, PromoEmails: a.PromoEmails,
		EmailVerified: a.EmailVerified}
}

func (s *server) register(c *fiber.Ctx) error {
	var req struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
		Name     *string `json:"name"`
		// PromoEmails opts in to campaign e-mail at sign-up (off when absent).
		PromoEmails *bool `json:"promo_emails"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Email == nil || req.Password == nil || req.Name == nil {
		return badRequest("email, password and name are required")
	}
	a, err := s.accounts.RegisterAccount(c.UserContext(), account.NewAccount{Email: *req.Email, Password: *req.Password,
		Name: *req.Name, PromoEmails: req.PromoEmails != nil && *req.PromoEmails})
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(toAccountResponse(a))
}

func (s *server) login(c *fiber.Ctx) error {
	var req struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Email == nil || req.Password == nil {
		return badRequest("email and password are required")
	}
	guard := s.loginGuard(c, *req.Email)
	if err := guard.check(); err != nil {
		return err
	}
	if len(*req.Password) > 4*account.MaxPasswordLen {
		guard.done(account.ErrBadCredentials)
		return account.ErrBadCredentials
	}
	token, expires, err := s.accounts.Login(c.UserContext(), *req.Email, *req.Password)
	guard.done(err)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"token": token, "expires_at": expires.UTC().Format(time.RFC3339)})
}

func (s *server) logout(c *fiber.Ctx) error {
	token := strings.TrimPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if err := s.accounts.Logout(c.UserContext(), token); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *server) me(c *fiber.Ctx) error {
	return c.JSON(toAccountResponse(caller(c)))
}

func (s *server) setPreferences(c *fiber.Ctx) error {
	var req struct {
		PromoEmails *bool `json:"promo_emails"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.PromoEmails == nil {
		return badRequest("promo_emails is required: true or false")
	}
	a, err := s.accounts.SetPromoEmails(c.UserContext(), caller(c).ID, *req.PromoEmails)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"promo_emails": a.PromoEmails})
}

// findAccount is staff's look-up of an account by e-mail address.
func (s *server) findAccount(c *fiber.Ctx) error {
	email := c.Query("email")
	if email == "" {
		return badRequest("query parameter email is required")
	}
	a, err := s.accounts.ByEmail(c.UserContext(), email)
	if err != nil {
		return err
	}
	return c.JSON(toAccountResponse(a))
}

// accountIDPattern is the shape of the ids the account service mints.
var accountIDPattern = regexp.MustCompile(`^acc_[0-9a-f]{24}$`)

func (s *server) setRoles(c *fiber.Ctx) error {
	id := c.Params("id")
	if !accountIDPattern.MatchString(id) {
		return notFound("account not found")
	}
	var req struct {
		Roles *[]string `json:"roles"`
	}
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if req.Roles == nil {
		return badRequest("roles is required: a list of shopper, ops, marketing and admin")
	}
	roles := make([]account.Role, 0, len(*req.Roles))
	for _, name := range *req.Roles {
		r, err := account.ParseRole(name)
		if err != nil {
			return err
		}
		roles = append(roles, r)
	}
	a, err := s.accounts.SetRoles(c.UserContext(), caller(c), id, roles)
	if err != nil {
		return err
	}
	return c.JSON(toAccountResponse(a))
}

type phoneSummaryResponse struct {
	ID             string `json:"id"`
	Brand          string `json:"brand"`
	Model          string `json:"model"`
	Name           string `json:"name"`
	ReleaseYear    int    `json:"release_year"`
	FromPriceCents int64  `json:"from_price_cents"`
	// FromSalePriceCents is the lowest price of the phone's variants while a
	// campaign discounts one of them.
	FromSalePriceCents *int64 `json:"from_sale_price_cents,omitempty"`
	Currency           string `json:"currency"`
	ImageURL           string `json:"image_url"`
	StockState         string `json:"stock_state"`
}

type variantResponse struct {
	SKU        string `json:"sku"`
	StorageGB  int    `json:"storage_gb"`
	Color      string `json:"color"`
	PriceCents int64  `json:"price_cents"`
	// SalePriceCents and PromoID are set while a campaign discounts the variant.
	SalePriceCents *int64 `json:"sale_price_cents,omitempty"`
	PromoID        string `json:"promo_id,omitempty"`
	Currency       string `json:"currency"`
	StockState     string `json:"stock_state"`
}

type phoneResponse struct {
	phoneSummaryResponse
	Category string            `json:"category"`
	Specs    catalog.Specs     `json:"specs"`
	Variants []variantResponse `json:"variants"`
}

// maxQueryWords bounds the words of ?q= (each one is a LIKE in the query).
const maxQueryWords = 8

func (s *server) parsePhoneQuery(c *fiber.Ctx) (catalog.Query, error) {
	var q catalog.Query
	var err error
	if q.PageSize, err = pageSize(c); err != nil {
		return q, err
	}
	if q.Sort, err = catalog.ParseSort(c.Query("sort")); err != nil {
		return q, err
	}
	if raw := c.Query("q"); raw != "" {
		if len(raw) > 200 {
			return q, badRequest("q must be at most 200 characters")
		}
		q.Words = strings.Fields(strings.ToLower(raw))
		if len(q.Words) > maxQueryWords {
			return q, badRequest("q must have at most 8 words")
		}
	}
	q.Brand = strings.TrimSpace(c.Query("brand"))
	if len(q.Brand) > 50 {
		return q, badRequest("brand must be at most 50 characters")
	}
	if q.MinPrice, err = optionalInt(c, "min_price_cents", 0, 1_000_000_00); err != nil {
		return q, err
	}
	if q.MaxPrice, err = optionalInt(c, "max_price_cents", 0, 1_000_000_00); err != nil {
		return q, err
	}
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		return q, badRequest("min_price_cents must not exceed max_price_cents")
	}
	storage, err := optionalInt(c, "storage_gb", 1, 1_000_000)
	if err != nil {
		return q, err
	}
	if storage != nil {
		v := int(*storage)
		q.StorageGB = &v
	}
	if raw := c.Query("five_g"); raw != "" {
		v, err := strconv.ParseBool(raw)
		if err != nil || (raw != "true" && raw != "false") {
			return q, badRequest("five_g must be true or false")
		}
		q.FiveG = &v
	}
	switch c.Query("in_stock") {
	case "":
	case "true":
		q.InStock = true
	case "false":
	default:
		return q, badRequest("in_stock must be true or false")
	}
	if token := c.Query("page_token"); token != "" {
		if q.After, err = q.DecodeCursor(token); err != nil {
			return q, err
		}
	}
	return q, nil
}

func optionalInt(c *fiber.Ctx, name string, min, max int64) (*int64, error) {
	raw := c.Query(name)
	if raw == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < min || v > max {
		return nil, badRequest(name + " must be an integer from " + strconv.FormatInt(min, 10) + " to " + strconv.FormatInt(max, 10))
	}
	return &v, nil
}

func (s *server) searchPhones(c *fiber.Ctx) error {
	q, err := s.parsePhoneQuery(c)
	if err != nil {
		return err
	}
	low := s.LowStockThreshold()
	cursor := "-"
	if q.After != nil {
		cursor = catalog.EncodeCursor(*q.After)
	}
	key := "search:" + q.Fingerprint() + ":" + strconv.Itoa(q.PageSize) + ":" + cursor + ":" + strconv.FormatInt(low, 10)
	v, err := s.view(c.UserContext(), s.PageViews, key, func(ctx context.Context) (any, error) {
		page, err := s.Catalog.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		body, err := s.encodeJSON(s.toSearchResponse(page, low, nil, time.Time{}))
		return pageView{page: page, body: body}, err
	})
	if err != nil {
		return err
	}
	pv := v.(pageView)
	campaigns, now := s.Campaigns.Live(), s.now()
	for _, p := range pv.page.Items {
		if discounted(campaigns, s.Catalog.VariantsOf(p.ID), p.Brand, now) {
			return c.JSON(s.toSearchResponse(pv.page, low, campaigns, now))
		}
	}
	return sendJSON(c, pv.body)
}

// toSearchResponse is a page of the search as API.md has it, priced by campaigns
// at now.
func (s *server) toSearchResponse(page catalog.Page, low int64, campaigns []*promo.Campaign, now time.Time) fiber.Map {
	items := make([]phoneSummaryResponse, len(page.Items))
	for i, p := range page.Items {
		items[i] = phoneSummaryResponse{
			ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
			FromPriceCents: p.FromPriceCents, Currency: catalog.Currency, ImageURL: p.ImageURL,
			StockState:         string(catalog.StateOf(p.MaxAvailable, low)),
			FromSalePriceCents: fromSalePrice(campaigns, s.Catalog.VariantsOf(p.ID), p.Brand, now),
		}
	}
	return fiber.Map{"items": items, "next_page_token": page.Next}
}

func (s *server) phone(c *fiber.Ctx) error {
	id := c.Params("id")
	if len(id) > 100 {
		return notFound("phone not found")
	}
	low := s.LowStockThreshold()
	v, err := s.view(c.UserContext(), s.PhoneViews, "phone:"+id+":"+strconv.FormatInt(low, 10), func(ctx context.Context) (any, error) {
		p, err := s.Catalog.Phone(ctx, id)
		if err != nil {
			return nil, err
		}
		body, err := s.encodeJSON(toPhoneResponse(p, low, nil, time.Time{}))
		return phoneView{phone: p, body: body}, err
	})
	if err != nil {
		return err
	}
	pv := v.(phoneView)
	campaigns, now := s.Campaigns.Live(), s.now()
	if discounted(campaigns, pv.phone.Variants, pv.phone.Brand, now) {
		return c.JSON(toPhoneResponse(pv.phone, low, campaigns, now))
	}
	return sendJSON(c, pv.body)
}

// toPhoneResponse is a phone's details as API.md has them, priced by campaigns at now.
func toPhoneResponse(p catalog.Phone, low int64, campaigns []*promo.Campaign, now time.Time) phoneResponse {
	resp := phoneResponse{
		phoneSummaryResponse: phoneSummaryResponse{
			ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
			FromPriceCents: p.FromPriceCents(), Currency: catalog.Currency, ImageURL: p.ImageURL,
		},
		Category: p.Category, Specs: p.Specs, Variants: make([]variantResponse, len(p.Variants)),
	}
	var best int64
	for i, v := range p.Variants {
		best = max(best, v.Available)
		resp.Variants[i] = variantResponse{SKU: v.SKU, StorageGB: v.StorageGB, Color: v.Color, PriceCents: v.PriceCents,
			Currency: catalog.Currency, StockState: string(catalog.StateOf(v.Available, low))}
		if c := promo.Best(campaigns, v.SKU, p.Brand, now); c != nil {
			sale := v.PriceCents - promo.UnitDiscount(v.PriceCents, c.PercentOff)
			resp.Variants[i].SalePriceCents, resp.Variants[i].PromoID = &sale, c.ID
		}
	}
	resp.FromSalePriceCents = fromSalePrice(campaigns, p.Variants, p.Brand, now)
	resp.StockState = string(catalog.StateOf(best, low))
	return resp
}

func (s *server) brands(c *fiber.Ctx) error {
	v, err := s.view(c.UserContext(), s.PageViews, "brands", func(ctx context.Context) (any, error) {
		bs, err := s.Catalog.Brands(ctx)
		if err != nil {
			return nil, err
		}
		items := make([]fiber.Map, len(bs))
		for i, b := range bs {
			items[i] = fiber.Map{"name": b.Name, "phone_count": b.PhoneCount}
		}
		return s.encodeJSON(fiber.Map{"items": items})
	})
	if err != nil {
		return err
	}
	return sendJSON(c, v.([]byte))
}

// discounted reports whether a live campaign discounts one of variants at now:
// only then does a response differ from its view.
func discounted(campaigns []*promo.Campaign, variants []catalog.Variant, brand string, now time.Time) bool {
	if len(campaigns) == 0 {
		return false
	}
	for _, v := range variants {
		if promo.Best(campaigns, v.SKU, brand, now) != nil {
			return true
		}
	}
	return false
}

// fromSalePrice is the lowest price of variants, each at its campaign's discount,
// when a campaign discounts at least one of them (nil: none does).
func fromSalePrice(campaigns []*promo.Campaign, variants []catalog.Variant, brand string, now time.Time) *int64 {
	if len(campaigns) == 0 {
		return nil
	}
	var lowest int64
	discounted := false
	for i, v := range variants {
		price := v.PriceCents
		if c := promo.Best(campaigns, v.SKU, brand, now); c != nil {
			price -= promo.UnitDiscount(v.PriceCents, c.PercentOff)
			discounted = true
		}
		if i == 0 || price < lowest {
			lowest = price
		}
	}
	if !discounted {
		return nil
	}
	return &lowest
}
