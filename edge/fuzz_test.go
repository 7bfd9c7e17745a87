package edge

// Fuzz targets for what the edge reads from a request before any grain or store sees
// it: bodies, catalog query strings, page tokens, idempotency keys and order ids.
// Each target checks that bad input is refused as a 4xx API error (a 500 would be
// the shop blaming itself for the client's input), never a panic, and that what the
// shop itself produces is read back unchanged. `make fuzz` runs them; plain `go
// test` runs their seeds (f.Add and testdata/fuzz/<target>/).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fasthttp"

	"phoneshop/actors/order"
	"phoneshop/catalog"
)

// The request bodies the handlers decode, as the handlers declare them (their
// structs are local to each handler). TestFuzzBodiesMatchOpenAPI keeps the two from
// drifting apart through the contract both follow.
type (
	fuzzRegisterBody struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
		Name     *string `json:"name"`
		// PromoEmails opts in to campaign e-mail.
		PromoEmails *bool `json:"promo_emails"`
	}
	fuzzLoginBody struct {
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	fuzzSetQuantityBody struct {
		Quantity *int64 `json:"quantity"`
	}
	fuzzCheckoutBody struct {
		ShippingAddress    *addressBody `json:"shipping_address"`
		ExpectedTotalCents *int64       `json:"expected_total_cents"`
	}
	fuzzReceiveStockBody struct {
		Received *int64 `json:"received"`
	}
	fuzzRedriveBody struct {
		Queue *string `json:"queue"`
		Limit *int64  `json:"limit"`
	}
)

// fuzzBodies pairs each body with its schema in openapi.json.
var fuzzBodies = []struct {
	schema string
	target func() any
}{
	{"NewAccount", func() any { return new(fuzzRegisterBody) }},
	{"Credentials", func() any { return new(fuzzLoginBody) }},
	{"SetQuantity", func() any { return new(fuzzSetQuantityBody) }},
	{"CreateOrder", func() any { return new(fuzzCheckoutBody) }},
	{"ReceiveStock", func() any { return new(fuzzReceiveStockBody) }},
	{"Redrive", func() any { return new(fuzzRedriveBody) }},
	{"PromoSpec", func() any { return new(promoBody) }},
	{"PromoPatch", func() any { return new(promoBody) }},
}

// TestFuzzBodiesMatchOpenAPI checks that the fuzzed bodies have the members
// openapi.json documents, nested objects included.
func TestFuzzBodiesMatchOpenAPI(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Ref string `json:"$ref"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var compare func(schema string, typ reflect.Type)
	compare = func(schema string, typ reflect.Type) {
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("openapi.json has no schema %s", schema)
		}
		var documented []string
		for name := range s.Properties {
			documented = append(documented, name)
		}
		slices.Sort(documented)
		fields := jsonFields(typ)
		var declared []string
		for name := range fields {
			declared = append(declared, name)
		}
		slices.Sort(declared)
		if diff := cmp.Diff(documented, declared); diff != "" {
			t.Errorf("%s: members (-openapi.json +%s):\n%s", schema, typ, diff)
		}
		for name, p := range s.Properties {
			if ref, ok := strings.CutPrefix(p.Ref, "#/components/schemas/"); ok && fields[name] != nil {
				compare(ref, fields[name])
			}
		}
	}
	for _, b := range fuzzBodies {
		compare(b.schema, reflect.TypeOf(b.target()))
	}
}

// jsonFields maps the JSON names of a struct's fields to their types (pointers
// removed); nil for a type that is not a struct.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	typ = deref(typ)
	if typ.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = deref(f.Type)
		}
	}
	return fields
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fuzzCtx is a request context of app for one input, outside any server: the
// functions under test read only the request. The returned func releases it.
func fuzzCtx(app *fiber.App, build func(r *fasthttp.Request)) (*fiber.Ctx, func()) {
	fctx := &fasthttp.RequestCtx{}
	build(&fctx.Request)
	c := app.AcquireCtx(fctx)
	return c, func() { app.ReleaseCtx(c) }
}

// wantClientError fails unless err is what the error handler answers as a 4xx API
// error, with a message that names nothing of the edge's insides.
func wantClientError(t *testing.T, input string, err error) {
	t.Helper()
	ae, known := toAPIError(err)
	if !known || ae.Status < 400 || ae.Status > 499 || ae.Code != codeInvalidRequest {
		t.Fatalf("%q: error %v answers %d %s, want 400 %s", input, err, ae.Status, ae.Code, codeInvalidRequest)
	}
	if ae.Message == "" || !utf8.ValidString(ae.Message) {
		t.Fatalf("%q: message %q, want valid non-empty text", input, ae.Message)
	}
	for _, leak := range []string{"json:", "jsontext", "strictjson", "edge.", "reflect", "Go "} {
		if strings.Contains(ae.Message, leak) {
			t.Fatalf("%q: message %q names %q", input, ae.Message, leak)
		}
	}
}

// FuzzDecodeBody decodes each input into every request body the edge reads.
// Refused: a 400. Accepted: every member name is unique in its object and exactly a
// documented name; encoding/json (the reference for what a name-exact body means)
// reads the same values; re-encoding reads back the same; and the same body with one
// name in capitals is refused.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		`{"email":"ann@example.com","password":"a long enough password","name":"Ann"}`,
		`{"email":"ann@example.com","password":"a long enough password"}`,
		`{"quantity":2}`,
		`{"shipping_address":{"name":"Ann","line1":"1 Main St","line2":"","city":"Springfield","postal_code":"12345","country":"US"}}`,
		`{"received":5}`,
		`{"QUANTITY":1}`,
		`{"quantity":1,"quantity":2}`,
		`{"quantity":1} {}`,
		`{"shipping_address":{"Name":"Ann"}}`,
		`{"received":1e2}`,
		"{\"email\":\"\\ud800\"}",
		``,
	} {
		f.Add([]byte(seed))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range fuzzBodies {
			v := b.target()
			err := decodeInCtx(app, body, v)
			if err != nil {
				wantClientError(t, b.schema+" "+string(body), err)
				continue
			}
			typ := reflect.TypeOf(v)
			if err := exactMembers(json.NewDecoder(bytes.NewReader(body)), typ); err != nil {
				t.Fatalf("%s: accepted %q: %v", b.schema, body, err)
			}
			reference := b.target()
			if err := json.Unmarshal(body, reference); err != nil {
				t.Fatalf("%s: accepted %q, which encoding/json refuses: %v", b.schema, body, err)
			}
			if diff := cmp.Diff(reference, v); diff != "" {
				t.Fatalf("%s: %q read unlike encoding/json (-encoding/json +strict):\n%s", b.schema, body, diff)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			back := b.target()
			if err := decodeInCtx(app, again, back); err != nil {
				t.Fatalf("%s: %q re-encoded as %s is refused: %v", b.schema, body, again, err)
			}
			if diff := cmp.Diff(v, back); diff != "" {
				t.Fatalf("%s: %q does not survive re-encoding (-first +again):\n%s", b.schema, body, diff)
			}
			wantCapitalsRefused(t, app, b.schema, again, b.target)
		}
	})
}

func decodeInCtx(app *fiber.App, body []byte, v any) error {
	c, release := fuzzCtx(app, func(r *fasthttp.Request) {
		r.Header.SetMethod(fiber.MethodPost)
		r.Header.SetContentType(fiber.MIMEApplicationJSON)
		r.SetBody(body)
	})
	defer release()
	return decodeStrict(c, v)
}

// wantCapitalsRefused changes each top-level member name of an accepted body to
// capitals in turn and requires a refusal: encoding/json would take it as the
// documented name.
func wantCapitalsRefused(t *testing.T, app *fiber.App, schema string, body []byte, target func() any) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return // null is accepted and has no members
	}
	for name, value := range members {
		upper := strings.ToUpper(name)
		if upper == name {
			continue
		}
		changed := map[string]json.RawMessage{upper: value}
		for other, v := range members {
			if other != name {
				changed[other] = v
			}
		}
		raw, err := json.Marshal(changed)
		if err != nil {
			t.Fatal(err)
		}
		err = decodeInCtx(app, raw, target())
		if err == nil {
			t.Fatalf("%s: %s accepted with %q in capitals", schema, raw, name)
		}
		wantClientError(t, string(raw), err)
	}
}

// exactMembers reads one JSON value from dec, which holds a value of Go type typ,
// and fails on a member name repeated within its object or, in an object read into
// a struct, not exactly one of the struct's JSON names. It uses encoding/json's
// tokenizer, so it does not share the code under test.
func exactMembers(dec *json.Decoder, typ reflect.Type) error {
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		fields := jsonFields(typ)
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			name := key.(string)
			if seen[name] {
				return fmt.Errorf("member %q repeated", name)
			}
			seen[name] = true
			var inner reflect.Type
			if fields != nil {
				if inner = fields[name]; inner == nil {
					return fmt.Errorf("member %q is not one of %v", name, slices.Sorted(maps.Keys(fields)))
				}
			}
			if err := exactMembers(dec, orAny(inner)); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		elem := reflect.TypeFor[any]()
		if t := deref(typ); t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		}
		for dec.More() {
			if err := exactMembers(dec, elem); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

func orAny(t reflect.Type) reflect.Type {
	if t == nil {
		return reflect.TypeFor[any]()
	}
	return t
}

// FuzzPhoneQuery parses catalog query strings as GET /api/v1/phones does. Refused: a
// 400. Accepted: the query keeps the API's bounds, and a page token the catalog
// makes for it reads back as the same cursor on the same query.
func FuzzPhoneQuery(f *testing.F) {
	for _, seed := range []struct {
		rawQuery, id, name string
		n                  int64
	}{
		{"", "google-pixel-8", "Pixel 8", 69900},
		{"q=pixel+pro&brand=Google&min_price_cents=100&max_price_cents=200000&storage_gb=128&five_g=true&in_stock=true&sort=-price&page_size=5",
			"apple-iphone-15", "iPhone 15", 79900},
		{"sort=-release_year&page_size=100", "x", "X", 2024},
		{"page_size=0", "x", "X", 0},
		{"page_size=101", "x", "X", 0},
		{"min_price_cents=5&max_price_cents=4", "x", "X", 0},
		{"five_g=1", "x", "X", 0},
		{"in_stock=yes", "x", "X", 0},
		{"sort=price&sort=name", "x", "X", 1},
		{"q=" + strings.Repeat("a+", 9), "x", "X", 0},
		{"page_token=%7B%7D", "x", "X", 0},
		{"brand=%20%20Apple%20", "x", "X", 0},
	} {
		f.Add(seed.rawQuery, seed.id, seed.name, seed.n)
	}
	app := fiber.New()
	s := &server{}
	f.Fuzz(func(t *testing.T, rawQuery, id, name string, n int64) {
		c, release := fuzzCtx(app, func(r *fasthttp.Request) {
			r.Header.SetMethod(fiber.MethodGet)
			r.SetRequestURI("/api/v1/phones?" + rawQuery)
		})
		defer release()
		q, err := s.parsePhoneQuery(c)
		if err != nil {
			wantClientError(t, rawQuery, err)
			return
		}
		wantQueryInBounds(t, rawQuery, q)
		// The round trip below replaces the token; forged tokens are
		// FuzzCatalogCursor's.
		if q.After != nil || id == "" || !utf8.ValidString(id) || !utf8.ValidString(name) {
			return
		}
		cursor := q.CursorAfter(catalog.Summary{ID: id, Name: name, FromPriceCents: n, ReleaseYear: int(n)})
		c.Context().QueryArgs().Set("page_token", catalog.EncodeCursor(cursor))
		next, err := s.parsePhoneQuery(c)
		if err != nil {
			t.Fatalf("%q: the catalog's own page token for it is refused: %v", rawQuery, err)
		}
		if next.After == nil || *next.After != cursor {
			t.Fatalf("%q: page token reads as %+v, want %+v", rawQuery, next.After, cursor)
		}
		next.After = nil
		if diff := cmp.Diff(q, next); diff != "" {
			t.Fatalf("%q: the query changed with its page token (-first +next):\n%s", rawQuery, diff)
		}
	})
}

// wantQueryInBounds checks an accepted query against API.md's limits.
func wantQueryInBounds(t *testing.T, rawQuery string, q catalog.Query) {
	t.Helper()
	fail := func(format string, args ...any) { t.Fatalf("%q: "+format, append([]any{rawQuery}, args...)...) }
	if q.PageSize < 1 || q.PageSize > catalog.MaxPageSize {
		fail("page size %d", q.PageSize)
	}
	if !slices.Contains([]catalog.Sort{catalog.SortName, catalog.SortPrice, catalog.SortPriceDesc, catalog.SortReleaseYearNew}, q.Sort) {
		fail("sort %q", q.Sort)
	}
	if len(q.Words) > maxQueryWords {
		fail("%d words", len(q.Words))
	}
	for _, w := range q.Words {
		if w == "" || strings.ToLower(w) != w || strings.ContainsFunc(w, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
			fail("word %q", w)
		}
	}
	if len(q.Brand) > 50 || strings.TrimSpace(q.Brand) != q.Brand {
		fail("brand %q", q.Brand)
	}
	for _, p := range []*int64{q.MinPrice, q.MaxPrice} {
		if p != nil && (*p < 0 || *p > 1_000_000_00) {
			fail("price %d", *p)
		}
	}
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		fail("min price %d over max %d", *q.MinPrice, *q.MaxPrice)
	}
	if q.StorageGB != nil && (*q.StorageGB < 1 || *q.StorageGB > 1_000_000) {
		fail("storage %d", *q.StorageGB)
	}
}

// FuzzCatalogCursor reads forged catalog page tokens, and round-trips the cursors
// the catalog makes. Refused: catalog.ErrInvalidQuery, a 400. Accepted: a cursor
// of the query it is used with, which re-encodes to itself.
func FuzzCatalogCursor(f *testing.F) {
	for _, seed := range []struct {
		token, sort, id, name string
		n                     int64
	}{
		{"", "", "google-pixel-8", "Pixel 8", 0},
		{catalog.EncodeCursor(catalog.Cursor{Sort: catalog.SortPrice, Int: 69900, ID: "google-pixel-8", Filter: catalog.Query{Sort: catalog.SortPrice}.Fingerprint()}),
			"price", "apple-iphone-15", "", 79900},
		{"e30", "name", "x", "X", 0},
		{"eyJpIjoieCJ9", "-release_year", "x", "", 2023},
		{"not base64!", "-price", "x", "", -1},
		{"bnVsbA", "name", "ünïcode", "Pixel 8 Pro — 5G", 0},
	} {
		f.Add(seed.token, seed.sort, seed.id, seed.name, seed.n)
	}
	f.Fuzz(func(t *testing.T, token, sort, id, name string, n int64) {
		parsed, err := catalog.ParseSort(sort)
		if err != nil {
			wantClientError(t, sort, err)
			parsed = catalog.SortName
		}
		q := catalog.Query{Sort: parsed, PageSize: catalog.DefaultPageSize}

		got, err := q.DecodeCursor(token)
		if err != nil {
			if !errors.Is(err, catalog.ErrInvalidQuery) {
				t.Fatalf("%q: error %v is not catalog.ErrInvalidQuery", token, err)
			}
			wantClientError(t, token, err)
		} else {
			if got.ID == "" || got.Sort != q.Sort || got.Filter != q.Fingerprint() {
				t.Fatalf("%q: accepted cursor %+v for query %+v", token, got, q)
			}
			again, err := q.DecodeCursor(catalog.EncodeCursor(*got))
			if err != nil || *again != *got {
				t.Fatalf("%q: cursor %+v re-encoded reads as %+v, %v", token, got, again, err)
			}
		}

		// The shop's phone ids and names are UTF-8, which JSON carries unchanged.
		if id == "" || !utf8.ValidString(id) || !utf8.ValidString(name) {
			return
		}
		made := q.CursorAfter(catalog.Summary{ID: id, Name: name, FromPriceCents: n, ReleaseYear: int(n)})
		back, err := q.DecodeCursor(catalog.EncodeCursor(made))
		if err != nil || *back != made {
			t.Fatalf("cursor %+v reads back as %+v, %v", made, back, err)
		}
	})
}

// FuzzOrderPageToken reads forged order-history page tokens, and round-trips the
// ones listOrders makes. Refused: a 400. Accepted: a cursor on an order id of the
// minted shape, which re-encodes to itself.
func FuzzOrderPageToken(f *testing.F) {
	at := time.Date(2026, 11, 24, 10, 30, 0, 123456789, time.UTC)
	minted, err := encodeOrderPageToken(order.ListCursor{CreatedAt: at, ID: order.ID("acc_1", "key-1")})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		token, accountID, key string
		unixNano              int64
	}{
		{minted, "acc_1", "key-1", at.UnixNano()},
		{"", "acc_2", "k", 0},
		{"e30", "a", "k", 1},
		{"eyJpIjoib3JkX3p6eiJ9", "a", "k", -1},
		{"bnVsbA", "a", "k", 1 << 62},
		{"!!", "", "", 0},
	} {
		f.Add(seed.token, seed.accountID, seed.key, seed.unixNano)
	}
	f.Fuzz(func(t *testing.T, token, accountID, key string, unixNano int64) {
		got, err := parseOrderPageToken(token)
		if err != nil {
			wantClientError(t, token, err)
		} else {
			if !validOrderID(got.ID) {
				t.Fatalf("%q: accepted order id %q", token, got.ID)
			}
			// Tokens hold times of orders, years 0-9999 with JSON's time format;
			// a forged one may hold any offset, which may push it outside.
			if again, err := encodeOrderPageToken(*got); err == nil {
				back, err := parseOrderPageToken(again)
				if err != nil || !back.CreatedAt.Equal(got.CreatedAt) || back.ID != got.ID {
					t.Fatalf("%q: cursor %+v re-encoded reads as %+v, %v", token, got, back, err)
				}
			}
		}

		// listOrders makes tokens from an order's created_at (UTC, as the
		// response formats it) and its id.
		made := order.ListCursor{CreatedAt: time.Unix(0, unixNano).UTC(), ID: order.ID(accountID, key)}
		tok, err := encodeOrderPageToken(made)
		if err != nil {
			t.Fatalf("%+v: %v", made, err)
		}
		back, err := parseOrderPageToken(tok)
		if err != nil || !back.CreatedAt.Equal(made.CreatedAt) || back.ID != made.ID {
			t.Fatalf("cursor %+v reads back as %+v, %v", made, back, err)
		}
	})
}

// FuzzIdempotencyKey checks the Idempotency-Key pattern against API.md's words (1 to
// 128 printable ASCII characters), and that every accepted key, for any account,
// mints an order id that validOrderID accepts: a refused minted id would make the
// order unreachable.
func FuzzIdempotencyKey(f *testing.F) {
	for _, seed := range [][2]string{
		{"key-1", "acc_1"},
		{"", "acc_1"},
		{strings.Repeat("k", 128), "a"},
		{strings.Repeat("k", 129), "a"},
		{"with space", "a"},
		{"tab\there", "a"},
		{"trailing-newline\n", "a"},
		{"ünïcode", "a"},
		{"\x7f", "a"},
		{"~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, accountID string) {
		want := len(key) >= 1 && len(key) <= 128
		for i := range len(key) {
			if key[i] < 0x21 || key[i] > 0x7e {
				want = false
			}
		}
		if got := idempotencyKeyPattern.MatchString(key); got != want {
			t.Fatalf("Idempotency-Key %q: accepted = %v, want %v", key, got, want)
		}
		if id := order.ID(accountID, key); !validOrderID(id) {
			t.Fatalf("order.ID(%q, %q) = %q, which validOrderID refuses", accountID, key, id)
		}
	})
}

// FuzzOrderID checks validOrderID against the shape order.ID mints, written out
// without a regular expression.
func FuzzOrderID(f *testing.F) {
	for _, seed := range []string{
		order.ID("acc_1", "key-1"),
		"ord_zzz",
		"ord_",
		"ord_" + strings.Repeat("A", 24),
		"ord_" + strings.Repeat("a", 25),
		"ord_" + strings.Repeat("a", 23),
		"ord_" + strings.Repeat("a", 24) + "\n",
		"ORD_" + strings.Repeat("a", 24),
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		hexPart, ok := strings.CutPrefix(id, "ord_")
		want := ok && len(hexPart) == 24
		for i := range len(hexPart) {
			if c := hexPart[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				want = false
			}
		}
		if got := validOrderID(id); got != want {
			t.Fatalf("validOrderID(%q) = %v, want %v", id, got, want)
		}
	})
}
