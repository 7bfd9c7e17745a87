// Package catalog is the shop's phone catalog: phones, their variants (one SKU per
// storage and colour), search with filters, sorts and cursor paging, and the stock
// state shoppers see. Stock itself belongs to the inventory grains; the catalog reads
// the levels they record beside their snapshots, so it may lag by a moment.
package catalog

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// Sentinel errors of the catalog.
var (
	ErrNotFound     = errors.New("catalog: not found")
	ErrInvalidQuery = errors.New("catalog: invalid query")
)

// Currency is the one currency the shop sells in.
const Currency = "USD"

// Paging limits of API.md.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Specs are a phone's headline specifications.
type Specs struct {
	DisplayInches float64 `json:"display_inches"`
	Chipset       string  `json:"chipset"`
	RAMGB         int     `json:"ram_gb"`
	BatteryMAH    int     `json:"battery_mah"`
	MainCameraMP  int     `json:"main_camera_mp"`
	FiveG         bool    `json:"five_g"`
	OS            string  `json:"os"`
}

// Variant is one SKU of a phone.
type Variant struct {
	SKU          string `json:"sku"`
	PhoneID      string `json:"-"`
	PhoneName    string `json:"-"`
	Brand        string `json:"-"`
	StorageGB    int    `json:"storage_gb"`
	Color        string `json:"color"`
	PriceCents   int64  `json:"price_cents"`
	InitialStock int64  `json:"initial_stock"`
	// Available is the last level its inventory grain recorded.
	Available int64 `json:"-"`
}

// DisplayName names the variant on a cart or order line.
// Every cart response names each of its lines: built by concatenation, not fmt,
// which took most of a large cart's rendering.
func (v Variant) DisplayName() string {
	size, unit := v.StorageGB, " GB "
	if size >= 1024 && size%1024 == 0 {
		size, unit = size/1024, " TB "
	}
	return v.PhoneName + " " + strconv.Itoa(size) + unit + v.Color
}

// Phone is a model with its variants.
type Phone struct {
	ID          string    `json:"id"`
	Brand       string    `json:"brand"`
	Model       string    `json:"model"`
	Name        string    `json:"name"`
	Category    string    `json:"category"`
	ReleaseYear int       `json:"release_year"`
	ImageURL    string    `json:"image_url"`
	Specs       Specs     `json:"specs"`
	Variants    []Variant `json:"variants"`
}

// FromPriceCents is the lowest price among the phone's variants.
func (p Phone) FromPriceCents() int64 {
	var min int64
	for i, v := range p.Variants {
		if i == 0 || v.PriceCents < min {
			min = v.PriceCents
		}
	}
	return min
}

// Summary is a phone as a search result lists it.
type Summary struct {
	ID             string
	Brand          string
	Model          string
	Name           string
	ReleaseYear    int
	FromPriceCents int64
	ImageURL       string
	// MaxAvailable is the most units available of any one variant.
	MaxAvailable int64
}

// Brand is a brand and how many phones it has.
type Brand struct {
	Name       string
	PhoneCount int
}

// StockState is what a shopper is told about stock.
type StockState string

// The stock states of API.md.
const (
	InStock    StockState = "in_stock"
	LowStock   StockState = "low_stock"
	OutOfStock StockState = "out_of_stock"
)

// StateOf says how available units look to a shopper, given the low-stock threshold.
func StateOf(available, lowStockThreshold int64) StockState {
	switch {
	case available <= 0:
		return OutOfStock
	case available <= lowStockThreshold:
		return LowStock
	default:
		return InStock
	}
}

// Sort orders search results.
type Sort string

// The sorts of API.md.
const (
	SortName           Sort = "name"
	SortPrice          Sort = "price"
	SortPriceDesc      Sort = "-price"
	SortReleaseYearNew Sort = "-release_year"
)

// ParseSort accepts the API's sort names; empty means by name.
func ParseSort(s string) (Sort, error) {
	switch Sort(s) {
	case "":
		return SortName, nil
	case SortName, SortPrice, SortPriceDesc, SortReleaseYearNew:
		return Sort(s), nil
	}
	return "", fmt.Errorf("%w: sort must be one of name, price, -price, -release_year", ErrInvalidQuery)
}

// Query is a validated search.
type Query struct {
	// Words must all appear in the brand, model or name (case-insensitive).
	Words     []string
	Brand     string
	MinPrice  *int64
	MaxPrice  *int64
	StorageGB *int
	FiveG     *bool
	InStock   bool
	Sort      Sort
	PageSize  int
	// After continues a previous page; nil starts at the beginning.
	After *Cursor
}

// Cursor is where a page ends: the sort key and id of its last phone.
type Cursor struct {
	Sort Sort   `json:"s"`
	Int  int64  `json:"n,omitempty"`
	Str  string `json:"t,omitempty"`
	ID   string `json:"i"`
	// Filter fingerprints the query the cursor belongs to; a token used with other
	// filters is refused rather than giving a page of something else.
	Filter string `json:"f"`
}

// Fingerprint identifies the filters and sort of q, not its page.
func (q Query) Fingerprint() string {
	b, _ := json.Marshal([]any{q.Words, strings.ToLower(q.Brand), q.MinPrice, q.MaxPrice, q.StorageGB, q.FiveG, q.InStock, q.Sort})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// CursorAfter returns the cursor that continues q after s.
func (q Query) CursorAfter(s Summary) Cursor {
	c := Cursor{Sort: q.Sort, ID: s.ID, Filter: q.Fingerprint()}
	switch q.Sort {
	case SortPrice, SortPriceDesc:
		c.Int = s.FromPriceCents
	case SortReleaseYearNew:
		c.Int = int64(s.ReleaseYear)
	default:
		c.Str = s.Name
	}
	return c
}

// EncodeCursor makes an opaque page token.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a page token made for q.
func (q Query) DecodeCursor(token string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	var c Cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, fmt.Errorf("%w: malformed page_token", ErrInvalidQuery)
	}
	if c.Sort != q.Sort || c.Filter != q.Fingerprint() {
		return nil, fmt.Errorf("%w: page_token belongs to another query", ErrInvalidQuery)
	}
	return &c, nil
}

// Page is one page of search results.
type Page struct {
	Items []Summary
	Next  string
}

// Store is the catalog's persistence. SearchPhones returns at most q.PageSize+1
// phones (the extra one tells whether another page follows).
type Store interface {
	SearchPhones(ctx context.Context, q Query) ([]Summary, error)
	Phone(ctx context.Context, id string) (Phone, error)
	Brands(ctx context.Context) ([]Brand, error)
	VariantsBySKU(ctx context.Context, skus []string) (map[string]Variant, error)
}

// Service answers catalog questions.
type Service struct {
	store Store
	// variants indexes every SKU's name and price, loaded once: nothing in the
	// shop changes them after the seed. A future price or catalog API must call
	// LoadVariants again (and invalidate the cached pages).
	variants atomic.Pointer[map[string]Variant]
	// byPhone indexes the same variants by phone, in no particular order.
	byPhone atomic.Pointer[map[string][]Variant]
}

// NewService returns a catalog service on store.
func NewService(store Store) *Service { return &Service{store: store} }

// LoadVariants (re)loads the index of SKUs that Variants serves from memory.
func (s *Service) LoadVariants(ctx context.Context, skus []string) error {
	vs, err := s.store.VariantsBySKU(ctx, skus)
	if err != nil {
		return err
	}
	byPhone := map[string][]Variant{}
	for sku, v := range vs {
		v.Available = 0 // a level, not a property of the SKU: read it from inventory
		vs[sku] = v
		byPhone[v.PhoneID] = append(byPhone[v.PhoneID], v)
	}
	s.variants.Store(&vs)
	s.byPhone.Store(&byPhone)
	return nil
}

// VariantsOf lists a phone's variants (after LoadVariants; before, none), for
// prices that depend on the SKU (campaigns) on pages that list phones.
func (s *Service) VariantsOf(phoneID string) []Variant {
	index := s.byPhone.Load()
	if index == nil {
		return nil
	}
	return (*index)[phoneID]
}

// Search runs q and returns one page.
func (s *Service) Search(ctx context.Context, q Query) (Page, error) {
	items, err := s.store.SearchPhones(ctx, q)
	if err != nil {
		return Page{}, err
	}
	var page Page
	if len(items) > q.PageSize {
		items = items[:q.PageSize]
		page.Next = EncodeCursor(q.CursorAfter(items[len(items)-1]))
	}
	page.Items = items
	return page, nil
}

// Phone returns one phone with its variants.
func (s *Service) Phone(ctx context.Context, id string) (Phone, error) { return s.store.Phone(ctx, id) }

// Brands lists the brands and their phone counts, by name.
func (s *Service) Brands(ctx context.Context) ([]Brand, error) { return s.store.Brands(ctx) }

// Variants resolves SKUs to their phone, name and price; unknown SKUs are absent
// from the map. Available is not set. After LoadVariants it answers from memory.
func (s *Service) Variants(ctx context.Context, skus []string) (map[string]Variant, error) {
	index := s.variants.Load()
	if index == nil {
		vs, err := s.store.VariantsBySKU(ctx, skus)
		for sku, v := range vs {
			v.Available = 0
			vs[sku] = v
		}
		return vs, err
	}
	out := make(map[string]Variant, len(skus))
	for _, sku := range skus {
		if v, ok := (*index)[sku]; ok {
			out[sku] = v
		}
	}
	return out, nil
}

//go:embed seed/phones.json
var seedJSON []byte

// Seed returns the catalog the shop starts with, from seed/phones.json.
func Seed() ([]Phone, error) {
	var phones []Phone
	if err := json.Unmarshal(seedJSON, &phones); err != nil {
		return nil, fmt.Errorf("catalog: seed/phones.json: %w", err)
	}
	for i := range phones {
		for j := range phones[i].Variants {
			phones[i].Variants[j].PhoneID = phones[i].ID
		}
	}
	return phones, nil
}

// SoldOutAtSeed lists the SKUs the seed gives no stock, in seed order: the ones a
// test or a benchmark can bring to an exact level by receiving units.
func SoldOutAtSeed() ([]string, error) {
	phones, err := Seed()
	if err != nil {
		return nil, err
	}
	var skus []string
	for _, p := range phones {
		for _, v := range p.Variants {
			if v.InitialStock == 0 {
				skus = append(skus, v.SKU)
			}
		}
	}
	return skus, nil
}
