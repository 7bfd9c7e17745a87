package edge_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/catalog"
	"phoneshop/internal/shoptest"
)

func TestCatalog(t *testing.T) {
	h := shoptest.Start(t, 1)
	seed := loadSeed(t)
	low := h.Config.Settings.LowStockThreshold

	search := func(t *testing.T, q url.Values) shoptest.Response {
		t.Helper()
		return do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones?" + q.Encode()})
	}
	// searchAll walks every page of q and checks the paging on the way.
	searchAll := func(t *testing.T, q url.Values) []phoneSummary {
		t.Helper()
		size := catalog.DefaultPageSize
		if raw := q.Get("page_size"); raw != "" {
			size, _ = strconv.Atoi(raw)
		}
		var all []phoneSummary
		token := ""
		for range len(seed.phones) + 2 {
			pq := url.Values{}
			for k, v := range q {
				pq[k] = v
			}
			if token != "" {
				pq.Set("page_token", token)
			}
			var p phonePage
			wantOK(t, search(t, pq), http.StatusOK, &p)
			if p.Items == nil {
				t.Fatal("items is null, want a list")
			}
			if len(p.Items) > size || (p.NextPageToken != "" && len(p.Items) != size) {
				t.Fatalf("page of %d items with next_page_token %q, page_size %d", len(p.Items), p.NextPageToken, size)
			}
			all = append(all, p.Items...)
			if p.NextPageToken == "" {
				return all
			}
			token = p.NextPageToken
		}
		t.Fatalf("paging of %v does not end", q)
		return nil
	}
	sortedIDs := func(items []phoneSummary) []string {
		ids := make([]string, len(items))
		for i, p := range items {
			ids[i] = p.ID
		}
		slices.Sort(ids)
		return ids
	}

	t.Run("list_default_page_of_20_with_next_page_token", func(t *testing.T) {
		var p phonePage
		wantOK(t, search(t, nil), http.StatusOK, &p)
		if len(p.Items) != 20 || p.NextPageToken == "" {
			t.Fatalf("got %d items, next_page_token %q; want 20 and a token (seed has %d phones)", len(p.Items), p.NextPageToken, len(seed.phones))
		}
		for _, got := range p.Items {
			if diff := cmp.Diff(wantSummary(seed.byID[got.ID], low), got); diff != "" {
				t.Errorf("item %s (-seed +got):\n%s", got.ID, diff)
			}
		}
	})

	t.Run("list_walk_visits_every_phone_once", func(t *testing.T) {
		for _, sort := range []string{"", "name", "price", "-price", "-release_year"} {
			for _, size := range []string{"", "1", "7", "46", "47", "100"} {
				t.Run(fmt.Sprintf("sort=%s,page_size=%s", sort, size), func(t *testing.T) {
					q := url.Values{}
					if sort != "" {
						q.Set("sort", sort)
					}
					if size != "" {
						q.Set("page_size", size)
					}
					all := searchAll(t, q)
					if len(all) != len(seed.phones) {
						t.Errorf("walked %d phones, seed has %d", len(all), len(seed.phones))
					}
					seen := map[string]int{}
					for i, got := range all {
						seen[got.ID]++
						if diff := cmp.Diff(wantSummary(seed.byID[got.ID], low), got); diff != "" {
							t.Errorf("item %s (-seed +got):\n%s", got.ID, diff)
						}
						if i > 0 && !inOrder(sort, all[i-1], got) {
							t.Errorf("sort %q: %s (%d, %d, %q) before %s (%d, %d, %q)", sort,
								all[i-1].ID, all[i-1].FromPriceCents, all[i-1].ReleaseYear, all[i-1].Name,
								got.ID, got.FromPriceCents, got.ReleaseYear, got.Name)
						}
					}
					for id, n := range seen {
						if n != 1 {
							t.Errorf("phone %s listed %d times", id, n)
						}
					}
				})
			}
		}
	})

	t.Run("list_400_when_page_size_invalid", func(t *testing.T) {
		for _, size := range []string{"0", "101", "abc", "-1", "1.5"} {
			t.Run("page_size="+size, func(t *testing.T) {
				wantError(t, search(t, url.Values{"page_size": {size}}), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	matchWords := func(words ...string) func(catalog.Phone) bool {
		return func(p catalog.Phone) bool {
			text := strings.ToLower(p.Brand + " " + p.Model + " " + p.Name)
			for _, w := range words {
				if !strings.Contains(text, w) {
					return false
				}
			}
			return true
		}
	}
	hasVariant := func(keep func(catalog.Variant) bool) func(catalog.Phone) bool {
		return func(p catalog.Phone) bool { return slices.ContainsFunc(p.Variants, keep) }
	}
	filters := []struct {
		name  string
		query url.Values
		want  func(catalog.Phone) bool
		check func(t *testing.T, got phoneSummary) // per item, optional
	}{
		{"q_pixel_only_google_phones", url.Values{"q": {"pixel"}}, matchWords("pixel"),
			func(t *testing.T, got phoneSummary) {
				if got.Brand != "Google" {
					t.Errorf("q=pixel listed %s of %s", got.ID, got.Brand)
				}
			}},
		{"q_two_words_must_both_match", url.Values{"q": {"galaxy fold"}}, matchWords("galaxy", "fold"), nil},
		{"q_two_words_in_any_order", url.Values{"q": {"fold pixel"}}, matchWords("pixel", "fold"), nil},
		{"q_is_case_insensitive", url.Values{"q": {"PiXeL FOLD"}}, matchWords("pixel", "fold"), nil},
		{"q_without_match_lists_nothing", url.Values{"q": {"zzzz"}}, matchWords("zzzz"), nil},
		{"brand_lists_only_that_brand", url.Values{"brand": {"Samsung"}}, func(p catalog.Phone) bool { return p.Brand == "Samsung" }, nil},
		{"max_price_keeps_phones_with_a_variant_at_most", url.Values{"max_price_cents": {"30000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents <= 30000 }),
			func(t *testing.T, got phoneSummary) {
				if got.FromPriceCents > 30000 {
					t.Errorf("%s from_price_cents %d above max 30000", got.ID, got.FromPriceCents)
				}
			}},
		{"min_price_keeps_phones_with_a_variant_at_least", url.Values{"min_price_cents": {"150000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents >= 150000 }), nil},
		{"price_range_keeps_phones_with_a_variant_inside", url.Values{"min_price_cents": {"50000"}, "max_price_cents": {"70000"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents >= 50000 && v.PriceCents <= 70000 }), nil},
		{"price_range_of_one_price", url.Values{"min_price_cents": {"79900"}, "max_price_cents": {"79900"}},
			hasVariant(func(v catalog.Variant) bool { return v.PriceCents == 79900 }), nil},
		{"storage_gb_keeps_phones_with_that_storage", url.Values{"storage_gb": {"1024"}},
			hasVariant(func(v catalog.Variant) bool { return v.StorageGB == 1024 }), nil},
		{"five_g_false_only_4g_phones", url.Values{"five_g": {"false"}}, func(p catalog.Phone) bool { return !p.Specs.FiveG },
			func(t *testing.T, got phoneSummary) {
				var d phoneDetail
				wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + got.ID}), http.StatusOK, &d)
				if d.Specs.FiveG {
					t.Errorf("five_g=false listed %s whose specs.five_g is true", got.ID)
				}
			}},
		{"five_g_true_only_5g_phones", url.Values{"five_g": {"true"}}, func(p catalog.Phone) bool { return p.Specs.FiveG }, nil},
		{"filters_combine", url.Values{"brand": {"Motorola"}, "five_g": {"false"}},
			func(p catalog.Phone) bool { return p.Brand == "Motorola" && !p.Specs.FiveG }, nil},
		{"in_stock_true_keeps_phones_with_stock", url.Values{"in_stock": {"true"}}, func(p catalog.Phone) bool { return maxInitialStock(p) > 0 }, nil},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"page_size": {"100"}}
			for k, v := range tc.query {
				q[k] = v
			}
			got := searchAll(t, q)
			want := seed.ids(tc.want)
			if diff := cmp.Diff(want, sortedIDs(got)); diff != "" {
				t.Errorf("%v (-seed +got):\n%s", tc.query, diff)
			}
			if tc.name != "q_without_match_lists_nothing" && len(want) == 0 {
				t.Fatalf("test data: no seed phone matches %v", tc.query)
			}
			if tc.name != "in_stock_true_keeps_phones_with_stock" && len(want) == len(seed.phones) {
				t.Fatalf("test data: every seed phone matches %v, the filter is not exercised", tc.query)
			}
			if tc.check != nil {
				for _, item := range got {
					tc.check(t, item)
				}
			}
		})
	}

	t.Run("sorts_are_ordered", func(t *testing.T) {
		for _, sort := range []string{"price", "-price", "name", "-release_year"} {
			t.Run(sort, func(t *testing.T) {
				var p phonePage
				wantOK(t, search(t, url.Values{"sort": {sort}, "page_size": {"100"}}), http.StatusOK, &p)
				if len(p.Items) != len(seed.phones) {
					t.Fatalf("got %d phones, want %d", len(p.Items), len(seed.phones))
				}
				for i := 1; i < len(p.Items); i++ {
					if !inOrder(sort, p.Items[i-1], p.Items[i]) {
						t.Errorf("%s before %s", p.Items[i-1].ID, p.Items[i].ID)
					}
				}
			})
		}
	})

	t.Run("search_400_when_query_invalid", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			query url.Values
		}{
			{"min_price_above_max_price", url.Values{"min_price_cents": {"70000"}, "max_price_cents": {"50000"}}},
			{"min_price_not_integer", url.Values{"min_price_cents": {"cheap"}}},
			{"max_price_negative", url.Values{"max_price_cents": {"-1"}}},
			{"storage_gb_not_integer", url.Values{"storage_gb": {"lots"}}},
			{"five_g_not_bool", url.Values{"five_g": {"maybe"}}},
			{"in_stock_not_bool", url.Values{"in_stock": {"yes"}}},
			{"sort_unknown", url.Values{"sort": {"popularity"}}},
			{"sort_unknown_direction", url.Values{"sort": {"-name"}}},
			{"q_too_many_words", url.Values{"q": {"a b c d e f g h i"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, search(t, tc.query), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("page_token_400_when_used_with_another_query", func(t *testing.T) {
		first := func(t *testing.T, q url.Values) string {
			t.Helper()
			var p phonePage
			wantOK(t, search(t, q), http.StatusOK, &p)
			if p.NextPageToken == "" {
				t.Fatalf("%v gave no next_page_token", q)
			}
			return p.NextPageToken
		}
		for _, tc := range []struct {
			name      string
			from, use url.Values
		}{
			{"other_brand", url.Values{"brand": {"Samsung"}, "page_size": {"2"}}, url.Values{"brand": {"Apple"}, "page_size": {"2"}}},
			{"filter_added", url.Values{"page_size": {"2"}}, url.Values{"five_g": {"false"}, "page_size": {"2"}}},
			{"other_sort", url.Values{"sort": {"price"}, "page_size": {"2"}}, url.Values{"sort": {"name"}, "page_size": {"2"}}},
			{"other_words", url.Values{"q": {"galaxy"}, "page_size": {"2"}}, url.Values{"q": {"pixel"}, "page_size": {"2"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				use := url.Values{"page_token": {first(t, tc.from)}}
				for k, v := range tc.use {
					use[k] = v
				}
				wantError(t, search(t, use), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("page_token_400_when_garbage", func(t *testing.T) {
		for _, token := range []string{"garbage!", "bm90IGpzb24", base64.RawURLEncoding.EncodeToString([]byte(`{}`))} {
			t.Run(token, func(t *testing.T) {
				wantError(t, search(t, url.Values{"page_token": {token}}), http.StatusBadRequest, "invalid_request")
			})
		}
	})

	t.Run("phone_detail_has_specs_and_variants", func(t *testing.T) {
		for _, id := range []string{"google-pixel-8", "apple-iphone-16-pro", "motorola-moto-g-power-2022"} {
			t.Run(id, func(t *testing.T) {
				p := seed.byID[id]
				want := phoneDetail{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
					FromPriceCents: p.FromPriceCents(), Currency: "USD", ImageURL: p.ImageURL,
					StockState: stockState(maxInitialStock(p), low), Specs: p.Specs}
				for _, v := range p.Variants {
					want.Variants = append(want.Variants, variantBody{SKU: v.SKU, StorageGB: v.StorageGB, Color: v.Color,
						PriceCents: v.PriceCents, Currency: "USD", StockState: stockState(v.InitialStock, low)})
				}
				var got phoneDetail
				wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + id}), http.StatusOK, &got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("phone (-seed +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("phone_404_when_unknown", func(t *testing.T) {
		for _, id := range []string{"no-such-phone", strings.Repeat("x", 200)} {
			t.Run(id[:min(len(id), 20)], func(t *testing.T) {
				wantError(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + id}), http.StatusNotFound, "not_found")
			})
		}
	})

	t.Run("brands_counts_match_seed", func(t *testing.T) {
		counts := map[string]int{}
		for _, p := range seed.phones {
			counts[p.Brand]++
		}
		want := []brandBody{}
		for name, n := range counts {
			want = append(want, brandBody{Name: name, PhoneCount: n})
		}
		slices.SortFunc(want, func(a, b brandBody) int { return strings.Compare(a.Name, b.Name) })
		var got struct {
			Items []brandBody `json:"items"`
		}
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/brands"}), http.StatusOK, &got)
		if diff := cmp.Diff(want, got.Items); diff != "" {
			t.Errorf("brands (-seed +got):\n%s", diff)
		}
	})

	// Last: it sells a phone out, which changes what the subtests above expect.
	t.Run("in_stock_true_excludes_sold_out_phone", func(t *testing.T) {
		admin := h.Admin()
		shopper, _ := h.Shopper()
		target := leastStockedPhone(seed)
		inStock := url.Values{"in_stock": {"true"}, "page_size": {"100"}}
		if !slices.Contains(sortedIDs(searchAll(t, inStock)), target.ID) {
			t.Fatalf("%s not listed in stock before the sell-out", target.ID)
		}

		// Buy every unit, a cart of at most MaxLineQuantity per line at a time.
		remaining := map[string]int64{}
		for _, v := range target.Variants {
			remaining[v.SKU] = h.StockLevel(admin, v.SKU).Available
		}
		for n := 0; ; n++ {
			filled := false
			for _, v := range target.Variants {
				if qty := min(remaining[v.SKU], h.Config.Settings.MaxLineQuantity); qty > 0 {
					putItem(t, h, shopper, v.SKU, qty)
					remaining[v.SKU] -= qty
					filled = true
				}
			}
			if !filled {
				break
			}
			placeOrder(t, h, shopper, fmt.Sprintf("sell-out-%d", n))
		}
		for _, v := range target.Variants {
			if l := h.StockLevel(admin, v.SKU); l.Available != 0 {
				t.Fatalf("%s still has %d available after the sell-out", v.SKU, l.Available)
			}
		}

		// API.md allows the catalog's stock view to lag by a moment.
		deadline := time.Now().Add(5 * time.Second)
		for slices.Contains(sortedIDs(searchAll(t, inStock)), target.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("in_stock=true still lists sold-out %s", target.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !slices.Contains(sortedIDs(searchAll(t, url.Values{"page_size": {"100"}})), target.ID) {
			t.Errorf("without in_stock, sold-out %s is no longer listed", target.ID)
		}
		var d phoneDetail
		wantOK(t, do(t, h, shoptest.Request{Method: "GET", Path: "/api/v1/phones/" + target.ID}), http.StatusOK, &d)
		if d.StockState != "out_of_stock" {
			t.Errorf("sold-out phone stock_state = %q, want out_of_stock", d.StockState)
		}
		for _, v := range d.Variants {
			if v.StockState != "out_of_stock" {
				t.Errorf("sold-out variant %s stock_state = %q, want out_of_stock", v.SKU, v.StockState)
			}
		}
	})
}

// inOrder reports whether a may come before b under sort (API.md's sort names).
func inOrder(sort string, a, b phoneSummary) bool {
	switch sort {
	case "price":
		return a.FromPriceCents <= b.FromPriceCents
	case "-price":
		return a.FromPriceCents >= b.FromPriceCents
	case "-release_year":
		return a.ReleaseYear >= b.ReleaseYear
	default:
		return a.Name <= b.Name
	}
}

// leastStockedPhone is the seed phone with the fewest units, the cheapest to sell out.
func leastStockedPhone(seed seedCatalog) catalog.Phone {
	var best catalog.Phone
	bestUnits := int64(-1)
	for _, p := range seed.phones {
		var units int64
		for _, v := range p.Variants {
			units += v.InitialStock
		}
		if units > 0 && (bestUnits < 0 || units < bestUnits) {
			best, bestUnits = p, units
		}
	}
	return best
}

// stockState is what API.md promises a shopper sees for available units.
func stockState(available, lowStockThreshold int64) string {
	switch {
	case available <= 0:
		return "out_of_stock"
	case available <= lowStockThreshold:
		return "low_stock"
	default:
		return "in_stock"
	}
}

func maxInitialStock(p catalog.Phone) int64 {
	var best int64
	for _, v := range p.Variants {
		best = max(best, v.InitialStock)
	}
	return best
}

// wantSummary is a seed phone as a search lists it before anything was sold.
func wantSummary(p catalog.Phone, low int64) phoneSummary {
	return phoneSummary{ID: p.ID, Brand: p.Brand, Model: p.Model, Name: p.Name, ReleaseYear: p.ReleaseYear,
		FromPriceCents: p.FromPriceCents(), Currency: "USD", ImageURL: p.ImageURL,
		StockState: stockState(maxInitialStock(p), low)}
}
