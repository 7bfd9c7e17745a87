package shop_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"phoneshop/actors/promo"
	"phoneshop/internal/openapitest"
	"phoneshop/internal/shoptest"
	"phoneshop/notify/delivery"
)

// mailQueueCounts reads GET /api/v1/ops/mail, checks it against the served
// openapi.json, and returns the counts of queue.
func mailQueueCounts(t *testing.T, h *shoptest.Harness, admin string, doc []byte, queueName string) (ready, unacked, dead int64) {
	t.Helper()
	r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/ops/mail", Token: admin})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/ops/mail: %d %s", r.Status, r.Body)
	}
	openapitest.Validate(t, doc, "MailStatus", r.Body)
	var st struct {
		Queues []struct {
			Name                 string
			Ready, Unacked, Dead int64
		}
	}
	r.JSON(t, &st)
	for _, q := range st.Queues {
		if q.Name == queueName {
			return q.Ready, q.Unacked, q.Dead
		}
	}
	t.Fatalf("no queue %s in %s", queueName, r.Body)
	return
}

// TestDevDeadLettersAreSeenAndRedriven: on dev's in-process queue, mails that
// could not be sent (here: their campaign was not in the store) are dead-lettered,
// counted in GET /api/v1/ops/mail and in the dead-letter metric; once the cause is
// fixed, a redrive sends them back and each is sent once.
func TestDevDeadLettersAreSeenAndRedriven(t *testing.T) {
	h := shoptest.Start(t, 1)
	admin := h.Admin()
	doc := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"}).Body
	const queueName = "phoneshop.promo.email"
	var accounts []string
	for i := range 3 {
		email := fmt.Sprintf("dead%d-%d@example.com", i, time.Now().UnixNano())
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/accounts", Body: map[string]any{
			"email": email, "password": "a long enough password", "name": "D", "promo_emails": true}})
		if r.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.Status, r.Body)
		}
		accounts = append(accounts, r.Map(t)["id"].(string))
		verifyByMail(t, h, email) // campaign mail goes to verified addresses only
	}
	ctx := context.Background()
	const promoID = "promo_written_later"
	for done := false; !done; {
		var err error
		if _, done, err = h.Shop.Store.FanOutPage(ctx, promoID, 500, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, "three dead letters", func() bool {
		ready, unacked, dead := mailQueueCounts(t, h, admin, doc, queueName)
		return ready == 0 && unacked == 0 && dead == 3
	})
	eventually(t, "the dead-letter metric", func() bool {
		return strings.Contains(string(h.Do(shoptest.Request{Method: "GET", Path: "/metrics"}).Body),
			`phoneshop_mail_dead_letters{queue="`+queueName+`"} 3`)
	})
	for id := range devMails(t, h) {
		if strings.HasPrefix(id, "promo.") {
			t.Fatalf("mail %s written for a campaign that is not there", id)
		}
	}

	// The cause is fixed: the campaign is in the store (ended: it prices nothing).
	now := time.Now()
	l := promo.Listing{Snapshot: promo.Snapshot{ID: promoID, Stage: "ended", Activated: true, Spec: promo.Spec{
		Name: "Written later", PercentOff: 10, Brands: []string{"Google"}, StartsAt: now.Add(-2 * time.Hour), EndsAt: now.Add(-time.Hour),
		EmailSubject: "Written later", EmailBody: "Late, but here."}}, CreatedAt: now, UpdatedAt: now}
	if err := h.Shop.Store.SavePromo(ctx, 0, []byte("not a grain's state"), l, promo.GrantsChange{}, nil); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ limit, want int }{{2, 2}, {100, 1}, {100, 0}} {
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/ops/mail/dead-letters/redrive", Token: admin,
			Body: map[string]any{"queue": queueName, "limit": step.limit}})
		if r.Status != http.StatusOK {
			t.Fatalf("redrive: %d %s", r.Status, r.Body)
		}
		openapitest.Validate(t, doc, "Redriven", r.Body)
		if got := int(r.Map(t)["redriven"].(float64)); got != step.want {
			t.Fatalf("redrive of %d: %d redriven, want %d", step.limit, got, step.want)
		}
	}
	waitForMails(t, h, "promo."+promoID+".", 3)
	eventually(t, "the queue empty and no dead letters", func() bool {
		ready, unacked, dead := mailQueueCounts(t, h, admin, doc, queueName)
		return ready == 0 && unacked == 0 && dead == 0
	})
	for _, id := range accounts {
		rec, err := h.Shop.Store.Delivery(ctx, delivery.Key{Kind: delivery.KindPromo, Subject: promoID, Recipient: id})
		if err != nil || rec.Status != delivery.Sent || rec.Attempts != 2 {
			t.Errorf("delivery to %s = %+v, %v; want sent at the second attempt", id, rec, err)
		}
	}
}

// eventually polls cond until it holds, failing the test after 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}
