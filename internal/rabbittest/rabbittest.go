// Package rabbittest gives tests their own vhost on the real RabbitMQ the CI
// machine runs: a fresh vhost per call, deleted with everything in it when the
// test ends, and small helpers that look into its queues. The broker's address
// comes from PHONESHOP_TEST_RABBITMQ_URL (default: guest on 127.0.0.1:5672);
// vhosts are made with rabbitmqctl (PHONESHOP_TEST_RABBITMQCTL, default from
// PATH), which needs the broker's Erlang cookie: root on the CI machine. A
// missing broker fails the test; only -short skips it.
package rabbittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the CI machine's RabbitMQ.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// VHost makes a vhost on the test broker that the URL's user may configure,
// write and read, and returns the AMQP URL of it; the vhost is deleted at
// cleanup.
func VHost(t testing.TB) (amqpURL string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs RabbitMQ (PHONESHOP_TEST_RABBITMQ_URL) and rabbitmqctl; -short skips it")
	}
	base := os.Getenv("PHONESHOP_TEST_RABBITMQ_URL")
	if base == "" {
		base = DefaultURL
	}
	uri, err := amqp.ParseURI(base)
	if err != nil {
		t.Fatalf("PHONESHOP_TEST_RABBITMQ_URL: %v", err)
	}
	conn, err := amqp.DialConfig(base, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("RabbitMQ at %s:%d is not reachable (%v): start it (rabbitmq-server -detached), or set PHONESHOP_TEST_RABBITMQ_URL, or run with -short", uri.Host, uri.Port, err)
	}
	_ = conn.Close()

	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	vhost := "phoneshop_test_" + hex.EncodeToString(suffix)
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, uri.Username, ".*", ".*", ".*")
	uri.Vhost = vhost
	return uri.String()
}

// CloseAllConnections closes every client connection of a vhost, as an
// operator (or a broker restart) does. vhost is the vhost's name or an AMQP URL
// of it, as VHost returns.
func CloseAllConnections(t testing.TB, vhost string) {
	t.Helper()
	if strings.HasPrefix(vhost, "amqp://") || strings.HasPrefix(vhost, "amqps://") {
		uri, err := amqp.ParseURI(vhost)
		if err != nil {
			t.Fatalf("parse %s: %v", vhost, err)
		}
		vhost = uri.Vhost
	}
	rabbitmqctl(t, "close_all_connections", "-p", vhost, "phoneshop test: connections closed on purpose")
}

func rabbitmqctl(t testing.TB, args ...string) {
	t.Helper()
	bin := os.Getenv("PHONESHOP_TEST_RABBITMQCTL")
	if bin == "" {
		bin = "rabbitmqctl"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("%s is not installed: install RabbitMQ's rabbitmqctl, or set PHONESHOP_TEST_RABBITMQCTL, or run with -short", bin)
	}
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// WithChannel runs f on a channel of a connection of its own to url, closed
// afterwards.
func WithChannel(t testing.TB, url string, f func(ch *amqp.Channel)) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial RabbitMQ: %v", err) // not the URL: it holds the password
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	f(ch)
}

// Inspect reads a queue's counts with a passive declaration: its ready
// messages and its consumers. A queue that does not exist (yet) counts -1
// messages and no consumers.
func Inspect(t testing.TB, url, queue string) (messages, consumers int) {
	t.Helper()
	messages, consumers = -1, 0
	WithChannel(t, url, func(ch *amqp.Channel) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			return
		}
		if err != nil {
			t.Fatalf("inspect %s: %v", queue, err)
		}
		messages, consumers = q.Messages, q.Consumers
	})
	return messages, consumers
}

// QueueDepth is the number of messages ready in queue (-1 if it does not exist).
func QueueDepth(t testing.TB, url, queue string) int {
	t.Helper()
	n, _ := Inspect(t, url, queue)
	return n
}

// Consumers is the number of consumers of queue (0 if it does not exist).
func Consumers(t testing.TB, url, queue string) int {
	t.Helper()
	_, n := Inspect(t, url, queue)
	return n
}

// Drain takes every message ready in queue, oldest first, and leaves it empty.
// It gets them one at a time (basic.get), so a message that arrives meanwhile
// is either taken and returned or left in the queue, never lost. A queue that
// does not exist fails the test.
func Drain(t testing.TB, url, queue string) []amqp.Delivery {
	t.Helper()
	var got []amqp.Delivery
	WithChannel(t, url, func(ch *amqp.Channel) {
		for {
			d, ok, err := ch.Get(queue, true)
			if err != nil {
				t.Fatalf("drain %s: %v", queue, err)
			}
			if !ok {
				return
			}
			got = append(got, d)
		}
	})
	return got
}

// MessageIDs are the Message-Ids of deliveries, in their order.
func MessageIDs(deliveries []amqp.Delivery) []string {
	ids := make([]string, len(deliveries))
	for i, d := range deliveries {
		ids[i] = d.MessageId
	}
	return ids
}
