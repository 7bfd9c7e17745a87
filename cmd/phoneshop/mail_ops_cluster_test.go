package main_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"phoneshop/internal/mailpittest"
	"phoneshop/internal/openapitest"
	"phoneshop/internal/shoptest"
)

// mailQueue is one queue of GET /api/v1/ops/mail.
type mailQueue struct {
	Name                 string
	Ready, Unacked, Dead int64
}

// opsMail reads GET /api/v1/ops/mail through h, checks it against the served
// openapi.json and returns the queue named.
func opsMail(t *testing.T, h *shoptest.Harness, admin string, doc []byte, name string) mailQueue {
	t.Helper()
	r := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/ops/mail", Token: admin})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/ops/mail: %d %s", r.Status, r.Body)
	}
	openapitest.Validate(t, doc, "MailStatus", r.Body)
	var st struct{ Queues []mailQueue }
	r.JSON(t, &st)
	for _, q := range st.Queues {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("no queue %s in %s", name, r.Body)
	return mailQueue{}
}

// TestDeadLettersAreSeenAndRedrivenThroughTheEdge on RabbitMQ: mails refused
// for good (550) are dead-lettered; the edge, which reads RabbitMQ itself,
// counts them in GET /api/v1/ops/mail, and the mailer's metric shows them;
// once the server takes mail again, a redrive through the edge sends each once.
func TestDeadLettersAreSeenAndRedrivenThroughTheEdge(t *testing.T) {
	c := startCluster(t, clusterSpec{Nodes: 1, Edges: 1, Mailers: 1, Env: []string{"PHONESHOP_CONSUL_TTL=3s"}})
	in := seedShoppers(t, c, 5, 0)
	h := c.Edge(0)
	admin := c.Admin(h)
	doc := h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/openapi.json"}).Body
	const queueName = "phoneshop.promo.email"

	c.Mailpit.SetChaos(t, mailpittest.Chaos{Recipient: mailpittest.Trigger{ErrorCode: 550, Probability: 100}})
	id := launch(t, c, admin, "Refused, then redriven")
	waitFor(t, "five dead letters", time.Minute, func() bool {
		q := opsMail(t, h, admin, doc, queueName)
		return q.Dead == int64(len(in)) && q.Ready == 0 && q.Unacked == 0
	})
	metrics := c.Mailers[0].healthURL + "/metrics"
	waitFor(t, "the dead-letter metric", time.Minute, func() bool {
		return strings.Contains(get(t, metrics), fmt.Sprintf(`phoneshop_mail_dead_letters{queue="%s"} %d`, queueName, len(in)))
	})
	if n := len(campaignMails(t, c.Mailpit, id)); n != 0 {
		t.Fatalf("%d mails got through a server answering 550", n)
	}

	shopper, _ := h.Shopper()
	redrive := func(token string, body any) shoptest.Response {
		return h.Do(shoptest.Request{Method: "POST", Path: "/api/v1/ops/mail/dead-letters/redrive", Token: token, Body: body})
	}
	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"a shopper", shopper, map[string]any{"queue": queueName, "limit": 10}, http.StatusForbidden},
		{"a queue that is not a mail queue", admin, map[string]any{"queue": queueName + ".dead", "limit": 10}, http.StatusBadRequest},
		{"a limit of 0", admin, map[string]any{"queue": queueName, "limit": 0}, http.StatusBadRequest},
	} {
		if r := redrive(tc.token, tc.body); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
		} else {
			openapitest.Validate(t, doc, "Error", r.Body)
		}
	}

	c.Mailpit.ClearChaos(t)
	r := redrive(admin, map[string]any{"queue": queueName, "limit": 100})
	if r.Status != http.StatusOK {
		t.Fatalf("redrive: %d %s", r.Status, r.Body)
	}
	openapitest.Validate(t, doc, "Redriven", r.Body)
	if n := r.Map(t)["redriven"]; n != float64(len(in)) {
		t.Fatalf("redriven %v, want %d", n, len(in))
	}
	mails := waitForRecipients(t, c.Mailpit, id, in, time.Minute)
	if to, dup := recipients(mails); !slices.Equal(to, in) || dup != 0 {
		t.Fatalf("after the redrive: %d shoppers, %d duplicates", len(to), dup)
	}
	waitFor(t, "no dead letters left", time.Minute, func() bool {
		q := opsMail(t, h, admin, doc, queueName)
		return q == mailQueue{Name: queueName}
	})
	var stats struct {
		Stats struct{ Recipients, Sent, Failed int64 } `json:"stats"`
	}
	h.Do(shoptest.Request{Method: "GET", Path: "/api/v1/promos/" + id, Token: admin}).JSON(t, &stats)
	if stats.Stats.Sent != int64(len(in)) || stats.Stats.Failed != 0 {
		t.Errorf("stats after the redrive = %+v, want %d sent and none failed", stats.Stats, len(in))
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
