// Package scenario is the shop's load scenarios, driven through its HTTP API by
// bench/loadgen: browse (the task mix of Online Boutique's load generator), cart
// churn, and the flash sale. Each returns its measurements and the correctness
// checks of its run; speed is judged by the report, never by these checks.
package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"phoneshop/bench/loadgen"
)

// Remote is a running shop reached over HTTP: the load generator's client of it.
type Remote struct {
	URL    string
	Client *http.Client
	// Admin is a token of an ops or admin account (restock, stock levels).
	Admin string
}

// Shopper is a registered, logged-in account.
type Shopper struct {
	Email string
	Token string
}

var (
	runID = time.Now().UnixNano()
	// accountSeq numbers accounts across every call in this process.
	accountSeq atomic.Int64
)

// Shoppers registers and logs in n accounts, concurrency at a time; this is set-up,
// outside any measured clock.
func (s Remote) Shoppers(ctx context.Context, n, concurrency int) ([]Shopper, error) {
	out := make([]Shopper, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				sh, err := s.register(ctx, fmt.Sprintf("bench-%d-%d@example.com", runID, accountSeq.Add(1)))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = sh
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func (s Remote) register(ctx context.Context, email string) (Shopper, error) {
	const password = "bench password 1"
	body, _ := json.Marshal(map[string]string{"email": email, "password": password, "name": "Bench Shopper"})
	o := loadgen.Do(ctx, s.Client, "register", http.MethodPost, s.URL+"/api/v1/accounts", "", body, nil)
	if o.Err != nil || o.Status != http.StatusCreated {
		return Shopper{}, fmt.Errorf("register %s: %d %s %v", email, o.Status, o.Code, o.Err)
	}
	body, _ = json.Marshal(map[string]string{"email": email, "password": password})
	o, resp := loadgen.DoBody(ctx, s.Client, "login", http.MethodPost, s.URL+"/api/v1/sessions", "", body, nil)
	if o.Err != nil || o.Status != http.StatusCreated {
		return Shopper{}, fmt.Errorf("login %s: %d %s %v", email, o.Status, o.Code, o.Err)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp, &sess); err != nil {
		return Shopper{}, err
	}
	return Shopper{Email: email, Token: sess.Token}, nil
}

// PutCartItem sets a cart line.
func (s Remote) PutCartItem(ctx context.Context, token, sku string, qty int) loadgen.Outcome {
	body, _ := json.Marshal(map[string]int{"quantity": qty})
	return loadgen.Do(ctx, s.Client, "add_to_cart", http.MethodPut, s.URL+"/api/v1/cart/items/"+sku, token, body, nil)
}

// Checkout checks the cart out under key; it returns the order id on a 201.
func (s Remote) Checkout(ctx context.Context, token, key string) (loadgen.Outcome, string) {
	body := []byte(`{"shipping_address":{"name":"Bench Shopper","line1":"1 Main Street","city":"Springfield","postal_code":"12345","country":"US"}}`)
	o, resp := loadgen.DoBody(ctx, s.Client, "checkout", http.MethodPost, s.URL+"/api/v1/orders", token, body,
		map[string]string{"Idempotency-Key": key})
	if o.Status != http.StatusCreated {
		return o, ""
	}
	var order struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(resp, &order)
	return o, order.ID
}

// Level is a SKU's stock through the ops API.
type Level struct {
	Available, Reserved, Sold, Received int64
}

// StockLevel reads a SKU's level.
func (s Remote) StockLevel(ctx context.Context, sku string) (Level, error) {
	o, body := loadgen.DoBody(ctx, s.Client, "level", http.MethodGet, s.URL+"/api/v1/ops/inventory/"+sku, s.Admin, nil, nil)
	if o.Err != nil || o.Status != http.StatusOK {
		return Level{}, fmt.Errorf("level %s: %d %s %v", sku, o.Status, o.Code, o.Err)
	}
	var l struct {
		Available int64 `json:"available"`
		Reserved  int64 `json:"reserved"`
		Sold      int64 `json:"sold"`
		Received  int64 `json:"received"`
	}
	err := json.Unmarshal(body, &l)
	return Level{Available: l.Available, Reserved: l.Reserved, Sold: l.Sold, Received: l.Received}, err
}

// Restock receives n units of sku.
func (s Remote) Restock(ctx context.Context, sku string, n int64) error {
	body, _ := json.Marshal(map[string]int64{"received": n})
	o := loadgen.Do(ctx, s.Client, "restock", http.MethodPut, s.URL+"/api/v1/ops/inventory/"+sku, s.Admin, body, nil)
	if o.Err != nil || o.Status != http.StatusOK {
		return fmt.Errorf("restock %s: %d %s %v", sku, o.Status, o.Code, o.Err)
	}
	return nil
}

// Catalog lists phone ids and SKUs with stock, for the browse mix.
func (s Remote) Catalog(ctx context.Context) (phones, skus []string, err error) {
	o, body := loadgen.DoBody(ctx, s.Client, "index", http.MethodGet, s.URL+"/api/v1/phones?page_size=100&in_stock=true", "", nil, nil)
	if o.Err != nil || o.Status != http.StatusOK {
		return nil, nil, fmt.Errorf("catalog: %d %v", o.Status, o.Err)
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, nil, err
	}
	for _, p := range page.Items {
		phones = append(phones, p.ID)
		o, body := loadgen.DoBody(ctx, s.Client, "view_product", http.MethodGet, s.URL+"/api/v1/phones/"+p.ID, "", nil, nil)
		if o.Status != http.StatusOK {
			continue
		}
		var ph struct {
			Variants []struct {
				SKU        string `json:"sku"`
				StockState string `json:"stock_state"`
			} `json:"variants"`
		}
		_ = json.Unmarshal(body, &ph)
		for _, v := range ph.Variants {
			if v.StockState == "in_stock" {
				skus = append(skus, v.SKU)
			}
		}
	}
	return phones, skus, nil
}

// Browse runs the Online Boutique task mix (view product 10, view cart 3, add to
// cart 2, index 1, checkout 1) with shoppers as the users, closed loop. Checkout,
// as in Online Boutique, adds an item first (op "add_and_checkout").
func (s Remote) Browse(ctx context.Context, shoppers []Shopper, cfg loadgen.Closed, progress loadgen.Progress) (*loadgen.Stats, error) {
	phones, skus, err := s.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	if len(phones) == 0 || len(skus) == 0 {
		return nil, fmt.Errorf("browse: no phone in stock")
	}
	type task struct {
		weight int
		run    func(ctx context.Context, sh Shopper, rng *rand.Rand) loadgen.Outcome
	}
	var orders atomic.Int64
	mix := []task{
		{10, func(ctx context.Context, _ Shopper, rng *rand.Rand) loadgen.Outcome {
			return loadgen.Do(ctx, s.Client, "view_product", http.MethodGet, s.URL+"/api/v1/phones/"+phones[rng.IntN(len(phones))], "", nil, nil)
		}},
		{3, func(ctx context.Context, sh Shopper, _ *rand.Rand) loadgen.Outcome {
			return loadgen.Do(ctx, s.Client, "view_cart", http.MethodGet, s.URL+"/api/v1/cart", sh.Token, nil, nil)
		}},
		{2, func(ctx context.Context, sh Shopper, rng *rand.Rand) loadgen.Outcome {
			return s.PutCartItem(ctx, sh.Token, skus[rng.IntN(len(skus))], 1+rng.IntN(3))
		}},
		{1, func(ctx context.Context, _ Shopper, _ *rand.Rand) loadgen.Outcome {
			return loadgen.Do(ctx, s.Client, "index", http.MethodGet, s.URL+"/api/v1/phones", "", nil, nil)
		}},
		// As in Online Boutique's locustfile, checkout puts an item in the cart first.
		{1, func(ctx context.Context, sh Shopper, rng *rand.Rand) loadgen.Outcome {
			if o := s.PutCartItem(ctx, sh.Token, skus[rng.IntN(len(skus))], 1); o.Failed() {
				o.Op = "add_and_checkout"
				return o
			}
			o, _ := s.Checkout(ctx, sh.Token, fmt.Sprintf("browse-%d-%d", runID, orders.Add(1)))
			o.Op = "add_and_checkout"
			return o
		}},
	}
	total := 0
	for _, t := range mix {
		total += t.weight
	}
	stats := loadgen.RunClosed(ctx, cfg, func(worker int) loadgen.Task {
		rng := rand.New(rand.NewPCG(uint64(worker), uint64(runID)))
		sh := shoppers[worker%len(shoppers)]
		return func(ctx context.Context) loadgen.Outcome {
			pick := rng.IntN(total)
			for _, t := range mix {
				if pick < t.weight {
					return t.run(ctx, sh, rng)
				}
				pick -= t.weight
			}
			panic("unreachable")
		}
	}, progress)
	return stats, nil
}

// CartChurn adds and removes lines over the shoppers' carts, closed loop.
func (s Remote) CartChurn(ctx context.Context, shoppers []Shopper, skus []string, cfg loadgen.Closed, progress loadgen.Progress) *loadgen.Stats {
	return loadgen.RunClosed(ctx, cfg, func(worker int) loadgen.Task {
		rng := rand.New(rand.NewPCG(uint64(worker), uint64(runID)+1))
		return func(ctx context.Context) loadgen.Outcome {
			sh := shoppers[rng.IntN(len(shoppers))]
			sku := skus[rng.IntN(len(skus))]
			if rng.IntN(3) == 0 {
				return loadgen.Do(ctx, s.Client, "remove_from_cart", http.MethodDelete, s.URL+"/api/v1/cart/items/"+sku, sh.Token, nil, nil)
			}
			return s.PutCartItem(ctx, sh.Token, sku, 1+rng.IntN(3))
		}
	}, progress)
}

// FlashResult is a flash sale's outcome.
type FlashResult struct {
	Stats *loadgen.Stats
	// Confirmed maps each shopper index with a 201 to its order id.
	Confirmed map[int]string
	Checks    []loadgen.Check
}

// PrepareFlash fills every shopper's cart with qty of sku (before the clock starts).
func (s Remote) PrepareFlash(ctx context.Context, shoppers []Shopper, sku string, concurrency int) error {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(shoppers) {
					return
				}
				if o := s.PutCartItem(ctx, shoppers[i].Token, sku, 1); o.Status != http.StatusOK {
					failed.Store(fmt.Errorf("fill cart: %d %s %v", o.Status, o.Code, o.Err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return nil
}

// Flash makes every shopper (cart already filled) check out once, concurrency at a
// time (closed loop) or at rate per second (open loop, when rate > 0), and checks
// the sale: confirmed orders never exceed the units, every 201 order is readable,
// the SKU's level is conserved and nothing stays reserved.
func (s Remote) Flash(ctx context.Context, shoppers []Shopper, sku string, unitsBefore Level, concurrency int, rate float64, progress loadgen.Progress) FlashResult {
	res := s.FlashLoad(ctx, shoppers, concurrency, rate, progress)
	res.Checks = s.CheckSale(ctx, shoppers, sku, unitsBefore, res.Confirmed)
	return res
}

// FlashLoad is Flash without its checks: the checkouts alone, so that a caller can
// measure what the load cost (CPU, writes, statements) before the checks' own reads
// run. CheckSale checks it afterwards.
func (s Remote) FlashLoad(ctx context.Context, shoppers []Shopper, concurrency int, rate float64, progress loadgen.Progress) FlashResult {
	res := FlashResult{Confirmed: map[int]string{}}
	var mu sync.Mutex
	task := func(i int) loadgen.Task {
		return func(ctx context.Context) loadgen.Outcome {
			o, id := s.Checkout(ctx, shoppers[i].Token, fmt.Sprintf("flash-%d-%d", runID, i))
			if id != "" {
				mu.Lock()
				res.Confirmed[i] = id
				mu.Unlock()
			}
			return o
		}
	}
	if rate > 0 {
		res.Stats = loadgen.RunOpen(ctx, loadgen.Open{Rate: rate, Duration: time.Duration(float64(len(shoppers)) / rate * float64(time.Second)),
			MaxInFlight: 4 * concurrency}, func(i int64) loadgen.Task {
			if int(i) >= len(shoppers) {
				return func(context.Context) loadgen.Outcome {
					return loadgen.Outcome{Op: "checkout", Code: "no_shopper_left", Status: 599}
				}
			}
			return task(int(i))
		}, progress)
	} else {
		var next atomic.Int64
		res.Stats = loadgen.RunClosed(ctx, loadgen.Closed{Concurrency: concurrency, Requests: int64(len(shoppers))}, func(int) loadgen.Task {
			return func(ctx context.Context) loadgen.Outcome { return task(int(next.Add(1) - 1))(ctx) }
		}, progress)
	}
	return res
}

// CheckSale checks a sale made by FlashLoad: every 201 order is readable, the SKU's
// level is conserved, units sold equal the confirmed orders and never exceed the
// units offered, and nothing stays reserved (it waits for the reservations of
// failed checkouts to expire).
func (s Remote) CheckSale(ctx context.Context, shoppers []Shopper, sku string, before Level, confirmed map[int]string) []loadgen.Check {
	var checks []loadgen.Check
	unreadable := 0
	for i, id := range confirmed {
		o := loadgen.Do(ctx, s.Client, "read_order", http.MethodGet, s.URL+"/api/v1/orders/"+id, shoppers[i].Token, nil, nil)
		if o.Status != http.StatusOK {
			unreadable++
		}
	}
	checks = append(checks, loadgen.Check{Name: "every 201 order is readable", OK: unreadable == 0,
		Detail: fmt.Sprintf("%d of %d unreadable", unreadable, len(confirmed))})
	// Reservations of checkouts that failed expire; give them the reservation TTL.
	var after Level
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for {
		after, err = s.StockLevel(ctx, sku)
		if err != nil || after.Reserved == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return append(checks, loadgen.Check{Name: "stock level readable", Detail: err.Error()})
	}
	sold := after.Sold - before.Sold
	checks = append(checks,
		loadgen.Check{Name: "conservation: available + reserved + sold = received",
			OK:     after.Available+after.Reserved+after.Sold == after.Received && after.Available >= 0,
			Detail: fmt.Sprintf("%+v", after)},
		loadgen.Check{Name: "no oversell: units sold = confirmed orders <= units offered",
			OK:     sold == int64(len(confirmed)) && sold <= before.Available,
			Detail: fmt.Sprintf("%d sold, %d confirmed orders, %d offered", sold, len(confirmed), before.Available)},
		loadgen.Check{Name: "nothing left reserved", OK: after.Reserved == 0, Detail: fmt.Sprintf("%d reserved", after.Reserved)},
	)
	return checks
}
