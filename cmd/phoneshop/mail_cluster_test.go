package main_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/account"
	"phoneshop/internal/mailpittest"
	"phoneshop/internal/rabbittest"
	"phoneshop/internal/shoptest"
	"phoneshop/persistence/mysql"
)

// The acceptance of issue 11 on real processes: nodes relay the outbox to a
// RabbitMQ vhost of the test's own, a mailer sends through a Mailpit of its own.

// seedShoppers writes accounts straight into the cluster's store (they never log
// in), their addresses verified: optedIn with campaign e-mail on, optedOut with it
// off. It returns the opted-in addresses.
func seedShoppers(t testing.TB, c *shopCluster, optedIn, optedOut int) []string {
	t.Helper()
	ctx := context.Background()
	store, err := mysql.Open(ctx, c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run := time.Now().UnixNano()
	var mu sync.Mutex
	var in []string
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				opt := i < optedIn
				a := account.Account{ID: fmt.Sprintf("acc_%012x%012x", run&0xffffffffffff, i), Name: "Shopper",
					Email: fmt.Sprintf("s%d-%d@example.com", i, run), Roles: []account.Role{account.RoleShopper},
					PasswordHash: "$argon2id$none", CreatedAt: time.Now(), PromoEmails: opt, EmailVerified: true}
				if err := store.CreateAccount(ctx, a); err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				if opt {
					mu.Lock()
					in = append(in, a.Email)
					mu.Unlock()
				}
			}
		})
	}
	for i := range optedIn + optedOut {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	slices.Sort(in)
	return in
}

// launch creates and launches a campaign on the Google brand through edge 0.
func launch(t testing.TB, c *shopCluster, admin, name string) string {
	t.Helper()
	h := c.Edge(0)
	r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos", Token: admin, Body: map[string]any{
		"name": name, "percent_off": 10, "brands": []string{"Google"},
		"starts_at":     time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"ends_at":       time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"email_subject": name, "email_body": "Pixels for less."}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	if r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/promos/" + id + "/launch", Token: admin}); r.Status != http.StatusOK {
		t.Fatalf("launch: %d %s", r.Status, r.Body)
	}
	return id
}

// campaignMails lists who got the campaign's mail (one entry per mail received).
func campaignMails(t testing.TB, mp *mailpittest.Server, promoID string) []mailpittest.Summary {
	t.Helper()
	var out []mailpittest.Summary
	for _, m := range mp.Summaries(t) {
		if strings.HasPrefix(m.MessageID, "promo."+promoID+".") {
			out = append(out, m)
		}
	}
	return out
}

// recipients are the distinct addresses of mails, sorted, and how many mails
// came twice or more.
func recipients(mails []mailpittest.Summary) (to []string, duplicates int) {
	seen := map[string]bool{}
	for _, m := range mails {
		for _, a := range m.To {
			if seen[a] {
				duplicates++
				continue
			}
			seen[a] = true
			to = append(to, a)
		}
	}
	slices.Sort(to)
	return to, duplicates
}

// waitForRecipients waits until every address of want has the campaign's mail.
func waitForRecipients(t testing.TB, mp *mailpittest.Server, promoID string, want []string, within time.Duration) []mailpittest.Summary {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		mails := campaignMails(t, mp, promoID)
		if to, _ := recipients(mails); len(to) >= len(want) {
			time.Sleep(500 * time.Millisecond) // a late duplicate would show up now
			return campaignMails(t, mp, promoID)
		}
		if time.Now().After(deadline) {
			to, _ := recipients(mails)
			t.Fatalf("%d of %d opted-in shoppers have campaign %s's mail after %s", len(to), len(want), promoID, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestCampaignMailsEveryOptedInShopperOnce: 2,000 opted in, 200 out; the
// campaign reaches exactly the 2,000, once each, with both unsubscribe headers;
// the one-click POST of a received mail's link unsubscribes its shopper, and the
// next campaign does not reach them.
func TestCampaignMailsEveryOptedInShopperOnce(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	in := seedShoppers(t, c, 2000, 200)
	admin := c.Admin(c.Edge(0))
	began := time.Now()
	first := launch(t, c, admin, "First")
	mails := waitForRecipients(t, c.Mailpit, first, in, 3*time.Minute)
	t.Logf("%d campaign mails in Mailpit %s after the launch", len(mails), time.Since(began).Round(time.Millisecond))
	to, dup := recipients(mails)
	if !slices.Equal(to, in) || dup != 0 {
		t.Fatalf("mail went to %d addresses (%d twice); want exactly the %d opted in, once", len(to), dup, len(in))
	}
	sample := c.Mailpit.Message(t, mails[0].ID)
	link := strings.Trim(strings.Join(strings.Fields(sample.Header.Get("List-Unsubscribe")), ""), "<>")
	if sample.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || !strings.Contains(link, "/u/") {
		t.Fatalf("unsubscribe headers: %v", sample.Header)
	}
	var stats struct {
		Stats struct{ Recipients, Sent, Failed int64 } `json:"stats"`
	}
	c.Edge(0).Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + first, Token: admin}).JSON(t, &stats)
	if stats.Stats.Recipients != 2000 || stats.Stats.Sent != 2000 || stats.Stats.Failed != 0 {
		t.Errorf("stats = %+v, want 2000 recipients, 2000 sent", stats.Stats)
	}

	// The shopper of the sample clicks its one-click link.
	resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}
	gone := sample.To[0]
	second := launch(t, c, admin, "Second")
	rest := slices.DeleteFunc(slices.Clone(in), func(a string) bool { return a == gone })
	mails = waitForRecipients(t, c.Mailpit, second, rest, 3*time.Minute)
	if to, _ := recipients(mails); slices.Contains(to, gone) || len(to) != len(rest) {
		t.Fatalf("the second campaign reached %d (unsubscribed %s among them: %v)", len(to), gone, slices.Contains(to, gone))
	}
}

// TestMailerKilledMidCampaignLosesNoMail: kill -9 of the mailer in the
// middle of a campaign and a restart: every opted-in shopper has the mail;
// duplicates are at most the prefetch window.
func TestMailerKilledMidCampaignLosesNoMail(t *testing.T) {
	const prefetch = 32
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1,
		Env: []string{"PHONESHOP_CONSUL_TTL=3s", fmt.Sprintf("PHONESHOP_MAIL_PREFETCH=%d", prefetch)}})
	in := seedShoppers(t, c, 2000, 0)
	admin := c.Admin(c.Edge(0))
	id := launch(t, c, admin, "Interrupted")
	for deadline := time.Now().Add(2 * time.Minute); len(campaignMails(t, c.Mailpit, id)) < 300; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the campaign did not start going out")
		}
	}
	c.Mailers[0].Kill9()
	killedAt := len(campaignMails(t, c.Mailpit, id))
	c.Mailers[0].Start()
	c.Mailers[0].waitReady(60 * time.Second)
	mails := waitForRecipients(t, c.Mailpit, id, in, 3*time.Minute)
	to, dup := recipients(mails)
	t.Logf("mailer killed after %d mails; in the end %d mails to %d shoppers: %d duplicates (prefetch %d)", killedAt, len(mails), len(to), dup, prefetch)
	if !slices.Equal(to, in) {
		t.Fatalf("%d of %d shoppers have the mail", len(to), len(in))
	}
	if dup > prefetch {
		t.Errorf("%d duplicates, more than the prefetch window %d", dup, prefetch)
	}
}

// TestRelayNodeKilledAfterALaunchStillMails: kill -9 of a node right after a
// launch: the campaign still goes out (the other node's relay takes over the
// outbox when the dead one's leases run out).
func TestRelayNodeKilledAfterALaunchStillMails(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 2, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	in := seedShoppers(t, c, 300, 0)
	admin := c.Admin(c.Edge(0))
	id := launch(t, c, admin, "Relayed")
	c.Nodes[0].Kill9()
	mails := waitForRecipients(t, c.Mailpit, id, in, 3*time.Minute)
	if to, _ := recipients(mails); !slices.Equal(to, in) {
		t.Fatalf("%d of %d shoppers have the mail", len(to), len(in))
	}
}

// TestBrokerDroppingConnectionsLosesNoMail: RabbitMQ closes every
// connection mid-campaign; relay and mailer reconnect and nothing is lost.
func TestBrokerDroppingConnectionsLosesNoMail(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	in := seedShoppers(t, c, 2000, 0)
	admin := c.Admin(c.Edge(0))
	id := launch(t, c, admin, "Dropped")
	for deadline := time.Now().Add(2 * time.Minute); len(campaignMails(t, c.Mailpit, id)) < 300; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the campaign did not start going out")
		}
	}
	rabbittest.CloseAllConnections(t, c.RabbitURL)
	mails := waitForRecipients(t, c.Mailpit, id, in, 3*time.Minute)
	to, dup := recipients(mails)
	t.Logf("connections closed mid-campaign: %d mails to %d shoppers, %d duplicates", len(mails), len(to), dup)
	if !slices.Equal(to, in) {
		t.Fatalf("%d of %d shoppers have the mail", len(to), len(in))
	}
}

// TestSMTPFaults: a server answering 4xx for a while gets every mail once it
// recovers; a 5xx is counted failed and dead-lettered; a malformed message goes to
// the dead letters without stopping the others.
func TestSMTPFaults(t *testing.T) {
	// A first retry sooner than the shipped 30 s: the test waits for it.
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s", "PHONESHOP_MAIL_RETRY_FIRST=1s"}})
	in := seedShoppers(t, c, 50, 0)
	admin := c.Admin(c.Edge(0))

	c.Mailpit.SetChaos(t, mailpittest.Chaos{Recipient: mailpittest.Trigger{ErrorCode: 451, Probability: 100}})
	soon := launch(t, c, admin, "Deferred")
	time.Sleep(3 * time.Second) // every mail is refused meanwhile, and retried
	if n := len(campaignMails(t, c.Mailpit, soon)); n != 0 {
		t.Fatalf("%d mails got through a server answering 451", n)
	}
	c.Mailpit.ClearChaos(t)
	mails := waitForRecipients(t, c.Mailpit, soon, in, 2*time.Minute)
	if to, dup := recipients(mails); !slices.Equal(to, in) || dup != 0 {
		t.Fatalf("after the 4xx: %d shoppers, %d duplicates", len(to), dup)
	}

	// A malformed message among them: dead-lettered, the rest flows.
	rabbittest.WithChannel(t, c.RabbitURL, func(ch *amqp.Channel) {
		if err := ch.Publish("phoneshop.events", "promo.email", false, false, amqp.Publishing{
			MessageId: "evt_malformed", ContentType: "application/json", Body: []byte("{not json"), DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatal(err)
		}
	})
	c.Mailpit.SetChaos(t, mailpittest.Chaos{Recipient: mailpittest.Trigger{ErrorCode: 550, Probability: 100}})
	refused := launch(t, c, admin, "Refused")
	var stats struct {
		Stats struct{ Recipients, Sent, Failed int64 } `json:"stats"`
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		c.Edge(0).Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + refused, Token: admin}).JSON(t, &stats)
		if stats.Stats.Failed == int64(len(in)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after the 5xx = %+v, want %d failed", stats.Stats, len(in))
		}
	}
	var dead []string
	for deadline := time.Now().Add(30 * time.Second); len(dead) < len(in)+1; time.Sleep(200 * time.Millisecond) {
		dead = append(dead, rabbittest.MessageIDs(rabbittest.Drain(t, c.RabbitURL, "phoneshop.promo.email.dead"))...)
		if time.Now().After(deadline) {
			t.Fatalf("%d messages dead-lettered, want the %d refused and the malformed one", len(dead), len(in))
		}
	}
	if !slices.Contains(dead, "evt_malformed") {
		t.Errorf("the malformed message is not among the dead letters")
	}
}

// TestOrderMailsOncePerEvent: each confirmed, cancelled and shipped order
// gets exactly one mail of its kind.
func TestOrderMailsOncePerEvent(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	h := c.Edge(0)
	admin := c.Admin(h)
	sku := shoptest.SoldOutSKUs(t, 1)[0]
	h.SetStock(admin, sku, 10)
	token, email := h.Shopper()
	var orders []string
	for i := range 3 {
		h.Do(shoptest.Request{Method: "PUT", Path: "/api/v1/cart/items/" + sku, Token: token, Body: map[string]int{"quantity": 1}})
		r := h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders", Token: token,
			Headers: map[string]string{"Idempotency-Key": fmt.Sprintf("mail-%d", i)}, Body: shoptest.Address()})
		if r.Status != http.StatusCreated {
			t.Fatalf("checkout: %d %s", r.Status, r.Body)
		}
		orders = append(orders, r.Map(t)["id"].(string))
	}
	h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/orders/" + orders[1] + "/cancel", Token: token})
	h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/ops/orders/" + orders[2] + "/ship", Token: admin})
	want := []string{"order.cancelled." + orders[1], "order.confirmed." + orders[0], "order.confirmed." + orders[1],
		"order.confirmed." + orders[2], "order.shipped." + orders[2]}
	slices.Sort(want)
	var got []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		got = got[:0]
		for _, m := range c.Mailpit.Summaries(t) {
			if strings.HasPrefix(m.MessageID, "order.") && slices.Contains(m.To, email) {
				got = append(got, strings.SplitN(m.MessageID, "@", 2)[0])
			}
		}
		slices.Sort(got)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(time.Second)
	if diff := slices.Compare(want, got); diff != 0 {
		t.Fatalf("order mails %v, want %v", got, want)
	}
}
