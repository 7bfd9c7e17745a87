package shop_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"phoneshop/internal/shoptest"
)

// devMails reads the .eml files dev wrote, by Message-ID.
func devMails(t *testing.T, h *shoptest.Harness) map[string]*mail.Message {
	t.Helper()
	dir := filepath.Join(h.DataDir, "mail")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]*mail.Message{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw)) // its body stays readable
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[strings.Trim(m.Header.Get("Message-Id"), "<>")] = m
	}
	return out
}

// waitForMails waits until dev has written exactly want mails whose Message-ID has
// prefix (and no more arrive for a moment).
func waitForMails(t *testing.T, h *shoptest.Harness, prefix string, want int) map[string]*mail.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := map[string]*mail.Message{}
		for id, m := range devMails(t, h) {
			if strings.HasPrefix(id, prefix) {
				got[id] = m
			}
		}
		if len(got) == want {
			time.Sleep(300 * time.Millisecond) // a duplicate would show up now
			again := 0
			for id := range devMails(t, h) {
				if strings.HasPrefix(id, prefix) {
					again++
				}
			}
			if again == want {
				return got
			}
		}
		if len(got) > want || time.Now().After(deadline) {
			var ids []string
			for id := range got {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			t.Fatalf("%d mails %s*, want %d: %v", len(got), prefix, want, ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDevMailsEachOrderEventOnce: in dev every mail is a .eml file; each order
// confirmed, cancelled and shipped gets exactly one mail of its kind, a retried
// checkout or a repeated command none more.
func TestDevMailsEachOrderEventOnce(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 10)
	token, email := h.Shopper()
	buy := func(key string) string {
		t.Helper()
		h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}})
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
			Headers: map[string]string{"Idempotency-Key": key}, Body: shoptest.Address()})
		if r.Status != http.StatusCreated {
			t.Fatalf("checkout: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	shipped, cancelled := buy("shipped"), buy("cancelled")
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
		Headers: map[string]string{"Idempotency-Key": "shipped"}, Body: shoptest.Address()}); r.Status != http.StatusOK {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	for _, step := range []struct{ path, token string }{
		{"/api/v1/ops/orders/" + shipped + "/ship", admin},
		{"/api/v1/ops/orders/" + shipped + "/ship", admin},
		{"/api/v1/orders/" + cancelled + "/cancel", token},
		{"/api/v1/orders/" + cancelled + "/cancel", token},
	} {
		if r := h.Do(shoptest.Request{Method: "POST", Path: step.path, Token: step.token}); r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", step.path, r.Status, r.Body)
		}
	}
	got := waitForMails(t, h, "order.", 4)
	var ids []string
	for id, m := range got {
		ids = append(ids, strings.SplitN(id, "@", 2)[0])
		if to := m.Header.Get("To"); !strings.Contains(to, email) {
			t.Errorf("%s to %q, want %s", id, to, email)
		}
	}
	slices.Sort(ids)
	want := []string{"order.cancelled." + cancelled, "order.confirmed." + cancelled, "order.confirmed." + shipped, "order.shipped." + shipped}
	slices.Sort(want)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("order mails (-want +got):\n%s", diff)
	}
}

// TestDevCampaignMailReachesTheOptedInOnceAndUnsubscribes: a launch mails every
// opted-in shopper once, nobody else; the one-click POST of a received mail's
// List-Unsubscribe link unsubscribes its shopper, and the next campaign does not
// reach them. The campaign's stats count what was sent. An opted-in shopper who
// never verified the address gets no campaign mail.
func TestDevCampaignMailReachesTheOptedInOnceAndUnsubscribes(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	register := func(i int, optIn, verify bool) string {
		email := fmt.Sprintf("mail%d-%d@example.com", i, time.Now().UnixNano())
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: map[string]any{
			"email": email, "password": "a long enough password", "name": "M", "promo_emails": optIn}})
		if r.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.Status, r.Body)
		}
		if verify {
			verifyByMail(t, h, email)
		}
		return email
	}
	var in []string
	for i := range 6 {
		if e := register(i, i%3 != 0, true); i%3 != 0 {
			in = append(in, e)
		}
	}
	register(6, true, false) // opted in, never verified
	launch := func(name string) campaignView {
		return startCampaign(t, h, admin, map[string]any{"name": name, "percent_off": 10, "brands": []string{"Google"},
			"starts_at":     time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"ends_at":       time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"email_subject": name, "email_body": "Pixels for less."})
	}
	first := launch("First")
	mails := waitForMails(t, h, "promo."+first.ID, len(in))
	var to []string
	var link string
	for _, m := range mails {
		to = append(to, strings.Trim(m.Header.Get("To"), "<>"))
		if m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Errorf("no one-click header: %v", m.Header)
		}
		if strings.Contains(m.Header.Get("To"), in[0]) {
			link = strings.Trim(strings.Join(strings.Fields(m.Header.Get("List-Unsubscribe")), ""), "<>")
		}
	}
	slices.Sort(to)
	sortedIn := slices.Clone(in)
	slices.Sort(sortedIn)
	if diff := cmp.Diff(sortedIn, to); diff != "" {
		t.Fatalf("campaign mail went to (-opted in +got):\n%s", diff)
	}
	var stats struct {
		Stats struct{ Recipients, Sent int64 } `json:"stats"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + first.ID, Token: admin}).JSON(t, &stats)
	if stats.Stats.Recipients != int64(len(in)) || stats.Stats.Sent != int64(len(in)) {
		t.Errorf("stats = %+v, want %d recipients and sent", stats.Stats, len(in))
	}

	// One click on the link of a received mail (its path on this shop).
	path := link[strings.Index(link, "/u/"):]
	if r := h.Do(shoptest.Request{Method: "POST", Path: path, Body: "List-Unsubscribe=One-Click",
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}); r.Status != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d %s", r.Status, r.Body)
	}
	second := launch("Second")
	mails = waitForMails(t, h, "promo."+second.ID, len(in)-1)
	for _, m := range mails {
		if strings.Contains(m.Header.Get("To"), in[0]) {
			t.Errorf("the next campaign reached %s, who unsubscribed", in[0])
		}
	}
}
