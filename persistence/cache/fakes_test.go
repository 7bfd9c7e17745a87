package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"phoneshop/account"
	"phoneshop/catalog"
)

// fakeCatalog is a catalog.Store that counts its calls.
type fakeCatalog struct {
	searches, phones, brands, variants atomic.Int64
	// phoneGate, when set, holds every Phone call until it is closed.
	phoneGate chan struct{}

	mu    sync.Mutex
	phone catalog.Phone
}

func newFakeCatalog() *fakeCatalog { return &fakeCatalog{phone: pixel()} }

func (f *fakeCatalog) setPhone(p catalog.Phone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phone = p
}

func (f *fakeCatalog) SearchPhones(_ context.Context, q catalog.Query) ([]catalog.Summary, error) {
	f.searches.Add(1)
	return []catalog.Summary{{ID: "pixel-9", Brand: "Google", Model: "9", Name: "Google Pixel 9 " + q.Brand,
		ReleaseYear: 2024, FromPriceCents: 79900, ImageURL: "/img/p9.png", MaxAvailable: 7}}, nil
}

func (f *fakeCatalog) Phone(_ context.Context, id string) (catalog.Phone, error) {
	f.phones.Add(1)
	if f.phoneGate != nil {
		<-f.phoneGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.phone.ID {
		return catalog.Phone{}, catalog.ErrNotFound
	}
	return f.phone, nil
}

func (f *fakeCatalog) Brands(context.Context) ([]catalog.Brand, error) {
	f.brands.Add(1)
	return []catalog.Brand{{Name: "Apple", PhoneCount: 4}, {Name: "Google", PhoneCount: 3}}, nil
}

func (f *fakeCatalog) VariantsBySKU(_ context.Context, skus []string) (map[string]catalog.Variant, error) {
	f.variants.Add(1)
	out := map[string]catalog.Variant{}
	for _, v := range pixel().Variants {
		out[v.SKU] = v
	}
	return out, nil
}

// pixel is a phone with every field set, hidden-from-JSON ones included.
func pixel() catalog.Phone {
	return catalog.Phone{
		ID: "pixel-9", Brand: "Google", Model: "9", Name: "Google Pixel 9", Category: "flagship",
		ReleaseYear: 2024, ImageURL: "/img/p9.png",
		Specs: catalog.Specs{DisplayInches: 6.3, Chipset: "Tensor G4", RAMGB: 12, BatteryMAH: 4700, MainCameraMP: 50, FiveG: true, OS: "Android"},
		Variants: []catalog.Variant{
			{SKU: "P9-128-OBS", PhoneID: "pixel-9", PhoneName: "Google Pixel 9", StorageGB: 128, Color: "Obsidian", PriceCents: 79900, InitialStock: 20, Available: 7},
			{SKU: "P9-256-POR", PhoneID: "pixel-9", PhoneName: "Google Pixel 9", StorageGB: 256, Color: "Porcelain", PriceCents: 89900, InitialStock: 10, Available: 0},
		},
	}
}

// fakeAccounts is an account.Store that counts its lookups.
type fakeAccounts struct {
	sessionLookups, accountLookups atomic.Int64
	now                            func() time.Time

	mu       sync.Mutex
	accounts map[string]account.Account
	sessions map[string]account.Session
}

func newFakeAccounts(now func() time.Time) *fakeAccounts {
	return &fakeAccounts{now: now, accounts: map[string]account.Account{}, sessions: map[string]account.Session{}}
}

func (f *fakeAccounts) CreateAccount(_ context.Context, a account.Account) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[a.ID] = a
	return nil
}

func (f *fakeAccounts) AccountByEmail(_ context.Context, email string) (account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if a.Email == email {
			return a, nil
		}
	}
	return account.Account{}, account.ErrNotFound
}

func (f *fakeAccounts) AccountByID(_ context.Context, id string) (account.Account, error) {
	f.accountLookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return account.Account{}, account.ErrNotFound
	}
	return a, nil
}

func (f *fakeAccounts) UpdateAccount(_ context.Context, id string, update func(*account.Account) error) (account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return account.Account{}, account.ErrNotFound
	}
	if err := update(&a); err != nil {
		return account.Account{}, err
	}
	f.accounts[id] = a
	return a, nil
}

func (f *fakeAccounts) RequestVerification(context.Context, string, time.Time, time.Duration) (time.Duration, error) {
	return 0, errors.New("fakeAccounts: no verification")
}

func (f *fakeAccounts) CreateSession(_ context.Context, s account.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[s.TokenHash] = s
	return nil
}

// SessionByTokenHash answers as the SQL store does: an expired session is not found.
func (f *fakeAccounts) SessionByTokenHash(_ context.Context, tokenHash string) (account.Session, error) {
	f.sessionLookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[tokenHash]
	if !ok || !f.now().Before(s.ExpiresAt) {
		return account.Session{}, account.ErrSessionNotFound
	}
	return s, nil
}

func (f *fakeAccounts) DeleteSession(_ context.Context, tokenHash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, tokenHash)
	return nil
}

var errCacheDown = errors.New("fake cache: down")

// failingCache fails every call, as a cache whose server is gone does.
type failingCache struct{}

func (failingCache) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, errCacheDown
}
func (failingCache) Set(context.Context, string, []byte, time.Duration) error {
	return errCacheDown
}
func (failingCache) Delete(context.Context, ...string) error     { return errCacheDown }
func (failingCache) Incr(context.Context, string) (int64, error) { return 0, errCacheDown }
