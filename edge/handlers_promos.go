package edge

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/gofiber/fiber/v2"

	"phoneshop/actors/promo"
	"phoneshop/catalog"
	"phoneshop/grain/call"
	"phoneshop/protos/promopb"
)

// promoIDPattern is the one shape of campaign id the edge mints; anything else
// names no campaign and is refused before a grain call (which would activate one).
var promoIDPattern = regexp.MustCompile(`^promo_[0-9a-f]{24}$`)

func newPromoID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return "promo_" + hex.EncodeToString(b)
}

// promoBody is a campaign as marketing writes it: every member is optional here;
// create requires some, and an edit changes the ones present.
type promoBody struct {
	Name               *string   `json:"name"`
	PercentOff         *int64    `json:"percent_off"`
	Brands             *[]string `json:"brands"`
	SKUs               *[]string `json:"skus"`
	StartsAt           *string   `json:"starts_at"`
	EndsAt             *string   `json:"ends_at"`
	MaxDiscountedUnits *int64    `json:"max_discounted_units"`
	// MaxUnitsPerCustomer limits the units one account buys at the discount.
	MaxUnitsPerCustomer *int64  `json:"max_units_per_customer"`
	EmailSubject        *string `json:"email_subject"`
	EmailBody           *string `json:"email_body"`
}

// isNullMember reports whether the JSON object body has the member name set to
// null. The strict decoder reads null and absent alike (a nil pointer); an edit
// tells them apart for max_discounted_units and max_units_per_customer: null
// removes the cap or the limit, absent keeps it.
func isNullMember(body []byte, name string) bool {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return false
	}
	raw, ok := members[name]
	return ok && string(raw) == "null"
}

// maxPromoUnits bounds a cap, so that a typo cannot be mistaken for a real one.
const maxPromoUnits = 1_000_000_000

// toSpec reads the members present into a spec and names them. Whether the brands
// and SKUs exist is checked against the catalog (the canonical brand names are
// stored); the rest of the rules are the domain's, checked by Validate.
func (s *server) toSpec(c *fiber.Ctx, b promoBody) (promo.Spec, []string, error) {
	var spec promo.Spec
	var fields []string
	if b.Name != nil {
		spec.Name, fields = *b.Name, append(fields, "name")
	}
	if b.PercentOff != nil {
		if *b.PercentOff < promo.MinPercentOff || *b.PercentOff > promo.MaxPercentOff {
			return spec, nil, badRequest("percent_off must be an integer from 1 to 90")
		}
		spec.PercentOff, fields = int(*b.PercentOff), append(fields, "percent_off")
	}
	for _, t := range []struct {
		name  string
		value *string
		into  *time.Time
	}{{"starts_at", b.StartsAt, &spec.StartsAt}, {"ends_at", b.EndsAt, &spec.EndsAt}} {
		if t.value == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339, *t.value)
		if err != nil {
			return spec, nil, badRequest(t.name + " must be an RFC 3339 time such as 2026-12-01T09:00:00Z")
		}
		*t.into, fields = at.UTC(), append(fields, t.name)
	}
	switch {
	case b.MaxDiscountedUnits != nil:
		if *b.MaxDiscountedUnits < 1 || *b.MaxDiscountedUnits > maxPromoUnits {
			return spec, nil, badRequest("max_discounted_units must be an integer from 1 to 1000000000, or null for no cap")
		}
		spec.MaxDiscountedUnits, fields = *b.MaxDiscountedUnits, append(fields, "max_discounted_units")
	case isNullMember(rawBody(c), "max_discounted_units"):
		spec.MaxDiscountedUnits, fields = 0, append(fields, "max_discounted_units") // no cap
	}
	switch {
	case b.MaxUnitsPerCustomer != nil:
		if *b.MaxUnitsPerCustomer < 1 || *b.MaxUnitsPerCustomer > promo.MaxPerCustomer {
			return spec, nil, badRequest("max_units_per_customer must be an integer from 1 to 100, or null for no limit")
		}
		spec.MaxUnitsPerCustomer, fields = *b.MaxUnitsPerCustomer, append(fields, "max_units_per_customer")
	case isNullMember(c.Body(), "max_units_per_customer"):
		spec.MaxUnitsPerCustomer, fields = 0, append(fields, "max_units_per_customer") // no limit
	}
	if b.EmailSubject != nil {
		spec.EmailSubject, fields = *b.EmailSubject, append(fields, "email_subject")
	}
	if b.EmailBody != nil {
		spec.EmailBody, fields = *b.EmailBody, append(fields, "email_body")
	}
	if b.Brands != nil || b.SKUs != nil {
		var brands, skus []string
		if b.Brands != nil {
			brands, fields = *b.Brands, append(fields, "brands")
		}
		if b.SKUs != nil {
			skus, fields = *b.SKUs, append(fields, "skus")
		}
		if len(brands)+len(skus) > promo.MaxTargets {
			return spec, nil, badRequest("at most 500 brands and skus together")
		}
		var err error
		if spec.Brands, spec.SKUs, err = s.knownTargets(c, brands, skus); err != nil {
			return spec, nil, err
		}
	}
	return spec, fields, nil
}

// knownTargets checks brands and SKUs against the catalog: brands match without
// regard to case and are returned as the catalog spells them.
func (s *server) knownTargets(c *fiber.Ctx, brands, skus []string) ([]string, []string, error) {
	var unknownBrands, unknownSKUs []string
	canonical := make([]string, 0, len(brands))
	if len(brands) > 0 {
		all, err := s.Catalog.Brands(c.UserContext())
		if err != nil {
			return nil, nil, err
		}
		for _, b := range brands {
			i := slices.IndexFunc(all, func(x catalog.Brand) bool { return strings.EqualFold(x.Name, strings.TrimSpace(b)) })
			if i < 0 {
				unknownBrands = append(unknownBrands, b)
				continue
			}
			canonical = append(canonical, all[i].Name)
		}
	}
	if len(skus) > 0 {
		known, err := s.Catalog.Variants(c.UserContext(), skus)
		if err != nil {
			return nil, nil, err
		}
		for _, sku := range skus {
			if _, ok := known[sku]; !ok {
				unknownSKUs = append(unknownSKUs, sku)
			}
		}
	}
	if len(unknownBrands) > 0 || len(unknownSKUs) > 0 {
		return nil, nil, &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest,
			Message: "the campaign names brands or skus the catalog does not sell",
			Details: map[string]any{"unknown_brands": nonNilStrings(unknownBrands), "unknown_skus": nonNilStrings(unknownSKUs)}}
	}
	return canonical, slices.Clone(skus), nil
}

func nonNilStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

type promoStats struct {
	Recipients      int64 `json:"recipients"`
	Sent            int64 `json:"sent"`
	Failed          int64 `json:"failed"`
	DiscountedUnits int64 `json:"discounted_units"`
	Orders          int64 `json:"orders"`
}

type promoResponse struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	PercentOff         int      `json:"percent_off"`
	Brands             []string `json:"brands"`
	SKUs               []string `json:"skus"`
	StartsAt           string   `json:"starts_at"`
	EndsAt             string   `json:"ends_at"`
	MaxDiscountedUnits *int64   `json:"max_discounted_units,omitempty"`
	// MaxUnitsPerCustomer is omitted when the campaign has no limit per customer.
	MaxUnitsPerCustomer *int64     `json:"max_units_per_customer,omitempty"`
	EmailSubject        string     `json:"email_subject"`
	EmailBody           string     `json:"email_body"`
	Status              string     `json:"status"`
	CreatedAt           string     `json:"created_at"`
	UpdatedAt           string     `json:"updated_at"`
	Stats               promoStats `json:"stats"`
}

func toPromoResponse(id string, spec promo.Spec, status promo.Status, units, orders int64, created, updated time.Time) promoResponse {
	r := promoResponse{
		ID: id, Name: spec.Name, PercentOff: spec.PercentOff,
		Brands: nonNilStrings(spec.Brands), SKUs: nonNilStrings(spec.SKUs),
		StartsAt: spec.StartsAt.UTC().Format(time.RFC3339), EndsAt: spec.EndsAt.UTC().Format(time.RFC3339),
		EmailSubject: spec.EmailSubject, EmailBody: spec.EmailBody, Status: string(status),
		CreatedAt: created.UTC().Format(time.RFC3339Nano), UpdatedAt: updated.UTC().Format(time.RFC3339Nano),
		Stats: promoStats{DiscountedUnits: units, Orders: orders},
	}
	if spec.MaxDiscountedUnits > 0 {
		n := spec.MaxDiscountedUnits
		r.MaxDiscountedUnits = &n
	}
	if spec.MaxUnitsPerCustomer > 0 {
		n := spec.MaxUnitsPerCustomer
		r.MaxUnitsPerCustomer = &n
	}
	return r
}

func promoViewResponse(v *promopb.PromoView) promoResponse {
	return toPromoResponse(v.Id, promo.SpecFromProto(v.Spec), promo.Status(v.Status), v.DiscountedUnits, v.Orders,
		v.CreatedAt.AsTime(), v.UpdatedAt.AsTime())
}

func (s *server) createPromo(c *fiber.Ctx) error {
	var body promoBody
	if err := decodeStrict(c, &body); err != nil {
		return err
	}
	if body.Name == nil || body.PercentOff == nil || body.StartsAt == nil || body.EndsAt == nil {
		return badRequest("name, percent_off, starts_at and ends_at are required, and at least one brand or sku")
	}
	spec, _, err := s.toSpec(c, body)
	if err != nil {
		return err
	}
	if err := spec.Validate(s.now()); err != nil {
		return err
	}
	id := newPromoID()
	client := promopb.GetPromoGrainClient(s.Cluster, id)
	req := &promopb.CreatePromoRequest{Spec: promo.SpecToProto(spec), DeadlineUnixMs: call.Deadline(c.UserContext())}
	v, err := call.Do(c.UserContext(), s.Calls, "promo", "Create", func(o ...cluster.GrainCallOption) (*promopb.PromoView, error) {
		return client.Create(req, o...)
	})
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(promoViewResponse(v))
}

// promoID reads the :id of a campaign route. A malformed id, or one the store has no
// campaign of, is a campaign that does not exist, found so before any grain call:
// a campaign's listing is written with its every snapshot, from its creation on.
func (s *server) promoID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !promoIDPattern.MatchString(id) {
		return "", notFound("promo not found")
	}
	_, found, err := s.Promos.PromoListing(c.UserContext(), id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", notFound("promo not found")
	}
	return id, nil
}

func (s *server) getPromo(c *fiber.Ctx) error {
	return s.promoCall(c, "Get", func(cl *promopb.PromoGrainClient, dl int64, o []cluster.GrainCallOption) (*promopb.PromoView, error) {
		return cl.Get(&promopb.GetPromoRequest{DeadlineUnixMs: dl}, o...)
	})
}

func (s *server) editPromo(c *fiber.Ctx) error {
	var body promoBody
	if err := decodeStrict(c, &body); err != nil {
		return err
	}
	spec, fields, err := s.toSpec(c, body)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return badRequest("an edit must name at least one field to change")
	}
	patch := &promopb.PromoPatch{Spec: promo.SpecToProto(spec), Fields: fields}
	return s.promoCall(c, "Edit", func(cl *promopb.PromoGrainClient, dl int64, o []cluster.GrainCallOption) (*promopb.PromoView, error) {
		return cl.Edit(&promopb.EditPromoRequest{Patch: patch, DeadlineUnixMs: dl}, o...)
	})
}

// promoMove is one of launch, pause and end.
type promoMove func(*promopb.PromoGrainClient, *promopb.PromoCommand, ...cluster.GrainCallOption) (*promopb.PromoView, error)

func (s *server) movePromo(name string, move promoMove) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(rawBody(c)) > 0 {
			// No body is needed; one that is sent must be an empty object.
			var empty struct{}
			if err := decodeStrict(c, &empty); err != nil {
				return err
			}
		}
		return s.promoCall(c, name, func(cl *promopb.PromoGrainClient, dl int64, o []cluster.GrainCallOption) (*promopb.PromoView, error) {
			return move(cl, &promopb.PromoCommand{DeadlineUnixMs: dl}, o...)
		})
	}
}

func (s *server) promoCall(c *fiber.Ctx, method string, f func(*promopb.PromoGrainClient, int64, []cluster.GrainCallOption) (*promopb.PromoView, error)) error {
	id, err := s.promoID(c)
	if err != nil {
		return err
	}
	client := promopb.GetPromoGrainClient(s.Cluster, id)
	v, err := call.Do(c.UserContext(), s.Calls, "promo", method, func(o ...cluster.GrainCallOption) (*promopb.PromoView, error) {
		return f(client, call.Deadline(c.UserContext()), o)
	})
	if err != nil {
		return err
	}
	resp := promoViewResponse(v)
	if err := s.withMailStats(c, []*promoResponse{&resp}); err != nil {
		return err
	}
	return c.JSON(resp)
}

// withMailStats fills the e-mail counts of campaign responses from the store.
func (s *server) withMailStats(c *fiber.Ctx, rs []*promoResponse) error {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	stats, err := s.Promos.PromoMailStats(c.UserContext(), ids)
	if err != nil {
		return err
	}
	for _, r := range rs {
		st := stats[r.ID]
		r.Stats.Recipients, r.Stats.Sent, r.Stats.Failed = st.Recipients, st.Sent, st.Failed
	}
	return nil
}

var promoStatuses = []promo.Status{promo.StatusDraft, promo.StatusScheduled, promo.StatusActive, promo.StatusPaused, promo.StatusEnded}

func (s *server) listPromos(c *fiber.Ctx) error {
	size, err := pageSize(c)
	if err != nil {
		return err
	}
	q := promo.ListQuery{Now: s.now(), Limit: size + 1}
	if raw := c.Query("status"); raw != "" {
		if !slices.Contains(promoStatuses, promo.Status(raw)) {
			return badRequest("status must be one of draft, scheduled, active, paused, ended")
		}
		q.Status = promo.Status(raw)
	}
	if token := c.Query("page_token"); token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		var cur promo.ListCursor
		if err == nil {
			err = json.Unmarshal(b, &cur)
		}
		if err != nil || !promoIDPattern.MatchString(cur.ID) {
			return badRequest("malformed page_token")
		}
		q.After = &cur
	}
	listed, err := s.Promos.ListPromos(c.UserContext(), q)
	if err != nil {
		return err
	}
	items := make([]promoResponse, 0, len(listed))
	next := ""
	for i, l := range listed {
		if i == size {
			last := listed[size-1]
			b, err := json.Marshal(promo.ListCursor{CreatedAt: last.CreatedAt, ID: last.ID})
			if err != nil {
				return err
			}
			next = base64.RawURLEncoding.EncodeToString(b)
			break
		}
		camp, err := promo.FromListing(l)
		if err != nil {
			return err
		}
		items = append(items, toPromoResponse(l.ID, camp.Spec, camp.StatusAt(q.Now), l.DiscountedUnits, l.Orders, l.CreatedAt, l.UpdatedAt))
	}
	refs := make([]*promoResponse, len(items))
	for i := range items {
		refs[i] = &items[i]
	}
	if err := s.withMailStats(c, refs); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_page_token": next})
}

type activePromoResponse struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PercentOff int      `json:"percent_off"`
	Brands     []string `json:"brands"`
	SKUs       []string `json:"skus"`
	EndsAt     string   `json:"ends_at"`
}

// activePromos lists the campaigns active now, ending soonest first, from this
// edge's view of them (at most one refresh behind the store).
func (s *server) activePromos(c *fiber.Ctx) error {
	active := s.Campaigns.Active(s.now())
	slices.SortFunc(active, func(a, b *promo.Campaign) int {
		if n := a.EndsAt.Compare(b.EndsAt); n != 0 {
			return n
		}
		return strings.Compare(a.ID, b.ID)
	})
	items := make([]activePromoResponse, len(active))
	for i, p := range active {
		items[i] = activePromoResponse{ID: p.ID, Name: p.Name, PercentOff: p.PercentOff,
			Brands: nonNilStrings(p.Brands), SKUs: nonNilStrings(p.SKUs), EndsAt: p.EndsAt.UTC().Format(time.RFC3339)}
	}
	return c.JSON(fiber.Map{"items": items})
}
