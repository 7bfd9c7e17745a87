package edge_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"phoneshop/internal/shoptest"
)

// chromiumPath is the browser the web page tests drive: Debian's chromium, or
// PHONESHOP_TEST_CHROMIUM. A missing browser fails the test: only -short skips it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("drives Chromium; -short skips the browser tests")
	}
	path := os.Getenv("PHONESHOP_TEST_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it with `make chromium` (apt-get install -y chromium), "+
			"or point PHONESHOP_TEST_CHROMIUM at a Chrome binary", path, err)
	}
	return path
}

// browserProblems collects what the page reported as broken: uncaught exceptions
// and console errors other than the failed requests the test provokes.
type browserProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *browserProblems) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		p.list = append(p.list, "exception: "+ev.ExceptionDetails.Text+" "+exceptionDescription(ev.ExceptionDetails))
	case *log.EventEntryAdded:
		// A 401 or 403 answer shows as a network error: the test asks for them.
		if ev.Entry.Level == log.LevelError && ev.Entry.Source != log.SourceNetwork {
			p.list = append(p.list, "console ("+string(ev.Entry.Source)+"): "+ev.Entry.Text)
		}
	}
}

func exceptionDescription(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

func (p *browserProblems) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// TestBrowserOpsDashboard drives /ops in headless Chromium: an admin logs in through
// the page's form and sees the member, its cart activations (following a cart the
// test fills while the page polls), throughput and health; a shopper sees the 403
// message.
func TestBrowserOpsDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	h := shoptest.Start(t, 1)
	ctx := context.Background()
	const adminEmail, adminPassword = "browser-admin@example.com", "admin password 1"
	if err := h.Shop.Accounts.EnsureAdmin(ctx, adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	const shopperEmail, shopperPassword = "browser-shopper@example.com", "shopper password 1"
	if _, err := h.Shop.Accounts.Register(ctx, shopperEmail, shopperPassword, "Browser Shopper"); err != nil {
		t.Fatal(err)
	}
	shopper, err := h.TryLogin(shopperEmail, shopperPassword)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh shop has no cart grain: this one is the only one.
	putItem(t, h, shopper, "google-pixel-8-128-obsidian", 1)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the CI runs as root, where Chromium's sandbox cannot start
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	browser, cancelTimeout := context.WithTimeout(browser, time.Minute)
	defer cancelTimeout()
	var problems browserProblems
	chromedp.ListenTarget(browser, problems.listen)

	member := h.Shop.Members[0]
	row := `#members tbody tr[data-member-id="` + member.ID() + `"]`
	var status, address, carts, storeHealth string
	err = chromedp.Run(browser,
		log.Enable(),
		chromedp.Navigate(h.URL+"/ops"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#email", adminEmail),
		chromedp.SendKeys("#password", adminPassword),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible(row),
		chromedp.Text(row+" td.status", &status),
		chromedp.Text(row+" td.address", &address),
		chromedp.Text(row+` td[data-kind="cart"]`, &carts),
		chromedp.Text(`#health li[data-part="store"] .status`, &storeHealth),
	)
	if err != nil {
		t.Fatalf("admin login and members table: %v (page problems: %v)", err, problems.get())
	}
	if status != "up" || address != member.Address() || carts != "1" || storeHealth != "up" {
		t.Errorf("member row: status %q, address %q, cart activations %q, store %q; want up, %s, 1, up",
			status, address, carts, storeHealth, member.Address())
	}

	// A second cart while the page polls: the table follows, and after two reads the
	// throughput figures are numbers.
	other, _ := h.Shopper()
	putItem(t, h, other, "google-pixel-8-128-obsidian", 1)
	var followed, rated bool
	err = chromedp.Run(browser,
		chromedp.Poll(`document.querySelector('`+row+` td[data-kind="cart"]').textContent === "2"`, &followed,
			chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Poll(`/^\d+(\.\d+)?$/.test(document.getElementById("rate-requests").textContent)`, &rated,
			chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		var shown string
		_ = chromedp.Run(browser, chromedp.Text(row+` td[data-kind="cart"]`, &shown))
		t.Fatalf("the page did not follow the second cart or show a request rate: %v (cart cell %q)", err, shown)
	}

	var forbidden string
	err = chromedp.Run(browser,
		chromedp.Click("#logout"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#email", shopperEmail),
		chromedp.SendKeys("#password", shopperPassword),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#forbidden"),
		chromedp.WaitNotVisible("#dashboard"),
		chromedp.Text("#forbidden", &forbidden),
	)
	if err != nil {
		t.Fatalf("shopper login: %v (page problems: %v)", err, problems.get())
	}
	if !strings.Contains(forbidden, "ops") || !strings.Contains(forbidden, "403") {
		t.Errorf("403 message = %q, want it to name the role ops and the 403", forbidden)
	}
	if p := problems.get(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
