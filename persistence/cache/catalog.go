package cache

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"phoneshop/catalog"
)

// DefaultCatalogTTL is how long a catalog read is cached when CatalogOptions says nothing.
const DefaultCatalogTTL = 30 * time.Second

// CatalogOptions tune a Catalog; the zero value is usable.
type CatalogOptions struct {
	// TTL bounds how long a cached read is served after a missed invalidation
	// (DefaultCatalogTTL when zero), views held in process (Views) included.
	TTL time.Duration
	// Bus, when set, tells every process sharing the cache of an invalidation at
	// once; without it another process sees it within a second.
	Bus     Bus
	Metrics *Metrics // nil: no metrics
	Log     *slog.Logger
}

// Catalog is a catalog.Store that serves searches, phones and brands from a Cache
// and reads through to the inner store on a miss. VariantsBySKU, which checkout
// prices from, always goes to the store.
//
// Entries live under a catalog generation ("catalog:<gen>:phone:<id>"); Invalidate
// moves to the next generation, so a change of the catalog or of a phone's stock
// state is seen by every edge sharing the cache: at once when they share a Bus,
// else within a second (the generation is read at most once a second).
type Catalog struct {
	inner catalog.Store
	rt    *readThrough
	bus   Bus // nil: none
	// storedTTL is how long an entry lives in the cache: the TTL less viewTTL,
	// the life of a view built from it in process, so that together they stay
	// within the TTL.
	storedTTL, viewTTL time.Duration
}

var _ catalog.Store = (*Catalog)(nil)

// NewCatalog returns the cached catalog over inner.
func NewCatalog(inner catalog.Store, c Cache, opts CatalogOptions) *Catalog {
	if opts.TTL <= 0 {
		opts.TTL = DefaultCatalogTTL
	}
	viewTTL := min(DefaultViewTTL, opts.TTL/2)
	cat := &Catalog{inner: inner, rt: newReadThrough(c, "catalog", opts.Metrics, opts.Log), bus: opts.Bus,
		storedTTL: opts.TTL - viewTTL, viewTTL: viewTTL}
	if opts.Bus != nil {
		opts.Bus.Subscribe(TopicCatalog, func(string) { cat.rt.forgetGen() })
	}
	return cat
}

// Invalidate makes every later read go to the store once, in every process
// sharing the cache.
func (c *Catalog) Invalidate(ctx context.Context) error {
	if err := c.rt.invalidate(ctx); err != nil {
		return err
	}
	if c.bus != nil {
		if err := c.bus.Announce(ctx, TopicCatalog, ""); err != nil {
			// The others read the generation again within a second anyway.
			c.rt.cacheFailed("publish", err)
		}
	}
	return nil
}

// SearchPhones implements catalog.Store.
func (c *Catalog) SearchPhones(ctx context.Context, q catalog.Query) ([]catalog.Summary, error) {
	cursor := "-"
	if q.After != nil {
		cursor = catalog.EncodeCursor(*q.After)
	}
	key := "search:" + q.Fingerprint() + ":" + strconv.Itoa(q.PageSize) + ":" + cursor
	return cachedRead(ctx, c.rt, key, jsonCodec[[]catalog.Summary](c.storedTTL), func(ctx context.Context) ([]catalog.Summary, error) {
		return c.inner.SearchPhones(ctx, q)
	})
}

// Phone implements catalog.Store. Unknown phones are not cached.
func (c *Catalog) Phone(ctx context.Context, id string) (catalog.Phone, error) {
	codec := codec[catalog.Phone]{
		encode: func(p catalog.Phone) ([]byte, error) { return json.Marshal(toPhoneEntry(p)) },
		decode: func(b []byte) (catalog.Phone, error) {
			var e phoneEntry
			err := json.Unmarshal(b, &e)
			return fromPhoneEntry(e), err
		},
		ttl: func(catalog.Phone) time.Duration { return c.storedTTL },
	}
	return cachedRead(ctx, c.rt, "phone:"+id, codec, func(ctx context.Context) (catalog.Phone, error) {
		return c.inner.Phone(ctx, id)
	})
}

// Brands implements catalog.Store.
func (c *Catalog) Brands(ctx context.Context) ([]catalog.Brand, error) {
	return cachedRead(ctx, c.rt, "brands", jsonCodec[[]catalog.Brand](c.storedTTL), c.inner.Brands)
}

// VariantsBySKU implements catalog.Store; it is not cached because orders are
// priced from it.
func (c *Catalog) VariantsBySKU(ctx context.Context, skus []string) (map[string]catalog.Variant, error) {
	return c.inner.VariantsBySKU(ctx, skus)
}

func jsonCodec[T any](ttl time.Duration) codec[T] {
	return codec[T]{
		encode: func(v T) ([]byte, error) { return json.Marshal(v) },
		decode: func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		},
		ttl: func(T) time.Duration { return ttl },
	}
}

// phoneEntry is a catalog.Phone as cached. catalog.Variant hides some fields from
// the API's JSON; the cache must keep all of them.
type phoneEntry struct {
	ID          string         `json:"id"`
	Brand       string         `json:"brand"`
	Model       string         `json:"model"`
	Name        string         `json:"name"`
	Category    string         `json:"category"`
	ReleaseYear int            `json:"release_year"`
	ImageURL    string         `json:"image_url"`
	Specs       catalog.Specs  `json:"specs"`
	Variants    []variantEntry `json:"variants"`
}

type variantEntry struct {
	SKU          string `json:"sku"`
	PhoneID      string `json:"phone_id"`
	PhoneName    string `json:"phone_name"`
	Brand        string `json:"brand,omitempty"`
	StorageGB    int    `json:"storage_gb"`
	Color        string `json:"color"`
	PriceCents   int64  `json:"price_cents"`
	InitialStock int64  `json:"initial_stock"`
	Available    int64  `json:"available"`
}

func toPhoneEntry(p catalog.Phone) phoneEntry {
	e := phoneEntry{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, Category: p.Category,
		ReleaseYear: p.ReleaseYear, ImageURL: p.ImageURL, Specs: p.Specs}
	if p.Variants != nil {
		e.Variants = make([]variantEntry, len(p.Variants))
	}
	for i, v := range p.Variants {
		e.Variants[i] = variantEntry(v)
	}
	return e
}

func fromPhoneEntry(e phoneEntry) catalog.Phone {
	p := catalog.Phone{ID: e.ID, Brand: e.Brand, Model: e.Model, Name: e.Name, Category: e.Category,
		ReleaseYear: e.ReleaseYear, ImageURL: e.ImageURL, Specs: e.Specs}
	if e.Variants != nil {
		p.Variants = make([]catalog.Variant, len(e.Variants))
	}
	for i, v := range e.Variants {
		p.Variants[i] = catalog.Variant(v)
	}
	return p
}
