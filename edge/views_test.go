package edge

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"phoneshop/catalog"
	"phoneshop/persistence/cache"
)

// TestViewsSendWhatRenderingSent: the catalog's hot reads served from views held
// in process answer byte for byte what rendering every request answered before
// them (legacyPhone, legacySearch and legacyBrands are those handlers, as they
// were), the first time and from the view.
func TestViewsSendWhatRenderingSent(t *testing.T) {
	store := newSeedStore(t)
	cached := cache.NewCatalog(store, cache.NewMemory(0), cache.CatalogOptions{})
	s := &server{Deps: Deps{
		Catalog:           catalog.NewService(cached),
		PhoneViews:        cache.NewViews(cached, cache.LocalPhones, 64, nil),
		PageViews:         cache.NewViews(cached, cache.LocalPages, 64, nil),
		LowStockThreshold: func() int64 { return 5 },
	}}
	if err := s.Catalog.LoadVariants(context.Background(), store.skus()); err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(nil)})
	s.encodeJSON = app.Config().JSONEncoder
	app.Get("/phones", s.searchPhones)
	app.Get("/phones/:id", s.phone)
	app.Get("/brands", s.brands)
	app.Get("/legacy/phones", s.legacySearch)
	app.Get("/legacy/phones/:id", s.legacyPhone)
	app.Get("/legacy/brands", s.legacyBrands)

	get := func(t *testing.T, path string) (int, string, []byte) {
		t.Helper()
		resp, err := app.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}
	paths := []string{"/brands", "/phones", "/phones?page_size=3", "/phones?brand=Apple&sort=-price", "/phones?in_stock=true&page_size=100"}
	for _, p := range store.phones {
		paths = append(paths, "/phones/"+p.ID)
	}
	// The second page, through the first page's token.
	_, _, first := get(t, "/legacy/phones?page_size=3")
	token := string(first[bytes.LastIndex(first, []byte(`"next_page_token":"`))+len(`"next_page_token":"`):])
	token = token[:strings.IndexByte(token, '"')]
	paths = append(paths, "/phones?page_size=3&page_token="+token)

	for _, path := range paths {
		wantStatus, wantType, want := get(t, "/legacy"+path)
		if wantStatus != fiber.StatusOK {
			t.Fatalf("legacy %s: %d %s", path, wantStatus, want)
		}
		for _, round := range []string{"rendered", "held"} {
			status, ctype, got := get(t, path)
			if status != wantStatus || ctype != wantType || !bytes.Equal(got, want) {
				t.Fatalf("%s (%s): %d %q\n%s\nwant %d %q\n%s", path, round, status, ctype, got, wantStatus, wantType, want)
			}
		}
	}
}

// legacySearch, legacyPhone and legacyBrands are the handlers as they were
// before views, less their campaign prices (no campaign is live here).
func (s *server) legacySearch(c *fiber.Ctx) error {
	q, err := s.parsePhoneQuery(c)
	if err != nil {
		return err
	}
	page, err := s.Catalog.Search(c.UserContext(), q)
	if err != nil {
		return err
	}
	low := s.LowStockThreshold()
	items := make([]phoneSummaryResponse, len(page.Items))
	for i, p := range page.Items {
		items[i] = phoneSummaryResponse{
			ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
			FromPriceCents: p.FromPriceCents, Currency: catalog.Currency, ImageURL: p.ImageURL,
			StockState: string(catalog.StateOf(p.MaxAvailable, low)),
		}
	}
	return c.JSON(fiber.Map{"items": items, "next_page_token": page.Next})
}

func (s *server) legacyPhone(c *fiber.Ctx) error {
	p, err := s.Catalog.Phone(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	low := s.LowStockThreshold()
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
	}
	resp.StockState = string(catalog.StateOf(best, low))
	return c.JSON(resp)
}

func (s *server) legacyBrands(c *fiber.Ctx) error {
	bs, err := s.Catalog.Brands(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]fiber.Map, len(bs))
	for i, b := range bs {
		items[i] = fiber.Map{"name": b.Name, "phone_count": b.PhoneCount}
	}
	return c.JSON(fiber.Map{"items": items})
}

// seedStore is a catalog.Store of the seed catalog, each variant at its initial
// stock. Its search ignores filters but sorts and pages by name, which is all a
// rendering needs.
type seedStore struct{ phones []catalog.Phone }

func newSeedStore(t *testing.T) *seedStore {
	t.Helper()
	phones, err := catalog.Seed()
	if err != nil {
		t.Fatal(err)
	}
	for i := range phones {
		for j := range phones[i].Variants {
			v := &phones[i].Variants[j]
			v.PhoneName, v.Brand, v.Available = phones[i].Name, phones[i].Brand, v.InitialStock
		}
	}
	slices.SortFunc(phones, func(a, b catalog.Phone) int { return strings.Compare(a.Name, b.Name) })
	return &seedStore{phones: phones}
}

func (s *seedStore) skus() []string {
	var skus []string
	for _, p := range s.phones {
		for _, v := range p.Variants {
			skus = append(skus, v.SKU)
		}
	}
	return skus
}

func (s *seedStore) SearchPhones(_ context.Context, q catalog.Query) ([]catalog.Summary, error) {
	var out []catalog.Summary
	started := q.After == nil
	for _, p := range s.phones {
		if !started {
			started = p.ID == q.After.ID
			continue
		}
		sum := catalog.Summary{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
			FromPriceCents: p.FromPriceCents(), ImageURL: p.ImageURL}
		for _, v := range p.Variants {
			sum.MaxAvailable = max(sum.MaxAvailable, v.Available)
		}
		out = append(out, sum)
		if len(out) == q.PageSize+1 {
			break
		}
	}
	return out, nil
}

func (s *seedStore) Phone(_ context.Context, id string) (catalog.Phone, error) {
	for _, p := range s.phones {
		if p.ID == id {
			return p, nil
		}
	}
	return catalog.Phone{}, catalog.ErrNotFound
}

func (s *seedStore) Brands(context.Context) ([]catalog.Brand, error) {
	counts := map[string]int{}
	for _, p := range s.phones {
		counts[p.Brand]++
	}
	var out []catalog.Brand
	for name, n := range counts {
		out = append(out, catalog.Brand{Name: name, PhoneCount: n})
	}
	slices.SortFunc(out, func(a, b catalog.Brand) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *seedStore) VariantsBySKU(_ context.Context, skus []string) (map[string]catalog.Variant, error) {
	out := map[string]catalog.Variant{}
	for _, p := range s.phones {
		for _, v := range p.Variants {
			if slices.Contains(skus, v.SKU) {
				out[v.SKU] = v
			}
		}
	}
	return out, nil
}
