package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mailStatusJSON = `{"outbox_pending":3,"outbox_oldest_age_seconds":12.4,"queues":[
 {"name":"phoneshop.promo.activated","ready":0,"unacked":0,"dead":0},
 {"name":"phoneshop.promo.email","ready":120,"unacked":32,"dead":5},
 {"name":"phoneshop.order.email","ready":0,"unacked":1,"dead":0}]}`

func TestMailStatus_shows_the_backlog_and_each_queue(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("GET /api/v1/ops/mail", http.StatusOK, mailStatusJSON)
	c := newCLI(t, shop)
	r := c.mustSucceed("mail", "status")
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	want := [][]string{
		{"OUTBOX", "PENDING", "OLDEST"},
		{"3", "12s"},
		{},
		{"QUEUE", "READY", "UNACKED", "DEAD"},
		{"phoneshop.promo.activated", "0", "0", "0"},
		{"phoneshop.promo.email", "120", "32", "5"},
		{"phoneshop.order.email", "0", "1", "0"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if req := shop.only(t); req.Method != "GET" || req.Path != "/api/v1/ops/mail" {
		t.Errorf("sent %s %s", req.Method, req.Path)
	}
	if r := c.mustSucceed("-o", "json", "mail", "status"); r.stdout != pretty(t, mailStatusJSON) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}
}

func TestMailRedrive_sends_the_queue_and_the_limit(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/ops/mail/dead-letters/redrive", http.StatusOK, `{"redriven":5}`)
	c := newCLI(t, shop)
	r := c.mustSucceed("mail", "redrive", "--queue", "phoneshop.promo.email")
	if r.stdout != "5 dead letters of phoneshop.promo.email sent back\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	c.mustSucceed("mail", "redrive", "--queue", "phoneshop.order.email", "--limit", "5000")
	if r := c.mustSucceed("-o", "json", "mail", "redrive", "--queue", "phoneshop.order.email"); r.stdout != pretty(t, `{"redriven":5}`) {
		t.Errorf("json stdout:\n%s", r.stdout)
	}
	got := shop.got()
	var bodies []any
	for _, req := range got {
		if req.Method != "POST" || req.Path != "/api/v1/ops/mail/dead-letters/redrive" {
			t.Errorf("sent %s %s", req.Method, req.Path)
		}
		bodies = append(bodies, decode(t, req.Body))
	}
	want := []any{
		map[string]any{"queue": "phoneshop.promo.email", "limit": 100.0},
		map[string]any{"queue": "phoneshop.order.email", "limit": 5000.0},
		map[string]any{"queue": "phoneshop.order.email", "limit": 100.0},
	}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

func TestMailRedrive_usage_errors_exit_2_and_send_nothing(t *testing.T) {
	for name, args := range map[string][]string{
		"no_queue":       {"mail", "redrive"},
		"limit_0":        {"mail", "redrive", "--queue", "phoneshop.order.email", "--limit", "0"},
		"limit_too_big":  {"mail", "redrive", "--queue", "phoneshop.order.email", "--limit", "10001"},
		"limit_not_int":  {"mail", "redrive", "--queue", "phoneshop.order.email", "--limit", "all"},
		"an_argument":    {"mail", "redrive", "--queue", "phoneshop.order.email", "now"},
		"no_subcommand":  {"mail"},
		"unknown_action": {"mail", "purge"},
	} {
		t.Run(name, func(t *testing.T) {
			shop := newFakeShop(t)
			r := newCLI(t, shop).run(args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			if n := len(shop.got()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestMailRedrive_a_refused_queue_exits_1_with_the_apis_error(t *testing.T) {
	shop := newFakeShop(t)
	shop.answer("POST /api/v1/ops/mail/dead-letters/redrive", http.StatusBadRequest,
		`{"error":{"code":"invalid_request","message":"queue must name a mail queue","details":{"queues":["phoneshop.order.email"]}}}`)
	r := newCLI(t, shop).run("mail", "redrive", "--queue", "orders")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "error: invalid_request: queue must name a mail queue") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
