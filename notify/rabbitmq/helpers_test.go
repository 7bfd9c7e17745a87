package rabbitmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/notify/outbox"
	"phoneshop/notify/rabbitmq"
)

// DefaultTestURL is the CI machine's RabbitMQ.
const DefaultTestURL = "amqp://guest:guest@127.0.0.1:5672/"

// testBroker is a vhost of the test RabbitMQ made for one test: its own
// exchange and queues, deleted with it.
type testBroker struct {
	url   string
	vhost string
}

// newTestBroker makes a vhost on the broker at PHONESHOP_TEST_RABBITMQ_URL
// (default: the CI machine's) with rabbitmqctl (PHONESHOP_TEST_RABBITMQCTL,
// default from PATH; it needs the broker's Erlang cookie, so root on the CI
// machine), and deletes it at cleanup. A missing broker fails the test; only
// -short skips it.
func newTestBroker(t *testing.T) testBroker {
	t.Helper()
	if testing.Short() {
		t.Skip("needs RabbitMQ (PHONESHOP_TEST_RABBITMQ_URL) and rabbitmqctl; -short skips it")
	}
	base := os.Getenv("PHONESHOP_TEST_RABBITMQ_URL")
	if base == "" {
		base = DefaultTestURL
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
	b := testBroker{vhost: "phoneshop_test_" + hex.EncodeToString(suffix)}
	rabbitmqctl(t, "add_vhost", b.vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", b.vhost) })
	rabbitmqctl(t, "set_permissions", "-p", b.vhost, uri.Username, ".*", ".*", ".*")
	uri.Vhost = b.vhost
	b.url = uri.String()
	return b
}

func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	bin := os.Getenv("PHONESHOP_TEST_RABBITMQCTL")
	if bin == "" {
		bin = "rabbitmqctl"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// closeAllConnections is what an operator (or a broker restart) does to every
// client of the vhost.
func (b testBroker) closeAllConnections(t *testing.T) {
	t.Helper()
	rabbitmqctl(t, "close_all_connections", "-p", b.vhost, "phoneshop test: connections closed on purpose")
}

// withChannel runs f on a connection of the test's own, closed afterwards.
func (b testBroker) withChannel(t *testing.T, f func(ch *amqp.Channel)) {
	t.Helper()
	conn, err := amqp.Dial(b.url)
	if err != nil {
		t.Fatalf("dial %s: %v", b.vhost, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	f(ch)
}

// bindQueue declares the exchange as the publisher does, and a durable queue
// bound to it with keys (durable, so that it outlives closed connections).
func (b testBroker) bindQueue(t *testing.T, queue string, args amqp.Table, keys ...string) {
	t.Helper()
	b.withChannel(t, func(ch *amqp.Channel) {
		if err := ch.ExchangeDeclare(rabbitmq.DefaultExchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			t.Fatalf("declare exchange: %v", err)
		}
		if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
			t.Fatalf("declare queue %s: %v", queue, err)
		}
		for _, key := range keys {
			if err := ch.QueueBind(queue, key, rabbitmq.DefaultExchange, false, nil); err != nil {
				t.Fatalf("bind %s to %s: %v", queue, key, err)
			}
		}
	})
}

// drain takes every message waiting in queue (call it once publishing is over:
// it takes as many as the queue counts when it starts).
func (b testBroker) drain(t *testing.T, queue string) []amqp.Delivery {
	t.Helper()
	var got []amqp.Delivery
	b.withChannel(t, func(ch *amqp.Channel) {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("inspect %s: %v", queue, err)
		}
		if q.Messages == 0 {
			return
		}
		deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
		if err != nil {
			t.Fatalf("consume %s: %v", queue, err)
		}
		timeout := time.After(30 * time.Second)
		for len(got) < q.Messages {
			select {
			case d := <-deliveries:
				got = append(got, d)
			case <-timeout:
				t.Fatalf("%s counted %d messages, %d delivered", queue, q.Messages, len(got))
			}
		}
	})
	return got
}

func messageIDs(ds []amqp.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.MessageId
	}
	return ids
}

// newEvents makes n events with distinct ids, the i-th with keys[i%len(keys)].
func newEvents(n int, keys ...string) []outbox.Event {
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	now := time.Now()
	events := make([]outbox.Event, n)
	for i := range events {
		key := keys[i%len(keys)]
		ev, err := outbox.New(key, fmt.Sprintf("ord_%x_%d", tag, i), map[string]int{"n": i}, now)
		if err != nil {
			panic(err)
		}
		events[i] = ev
	}
	return events
}

func ids(events []outbox.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.ID
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newPublisher returns a publisher for cfg that is closed at cleanup.
func newPublisher(t *testing.T, cfg rabbitmq.Config) *rabbitmq.Publisher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p := rabbitmq.NewPublisher(cfg)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// waitForGoroutines waits until no more goroutines run than before, and fails
// with their stacks if that does not happen within a few seconds (the library's
// reader goroutine ends once the closed socket's read returns).
func waitForGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, stacks.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeBroker is a TCP listener that is not RabbitMQ: it counts the connections
// made to it, and either hangs up at once (a broker that is down or refusing)
// or says nothing (a broker that hangs).
type fakeBroker struct {
	ln      net.Listener
	accepts atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	done    chan struct{}
}

func newFakeBroker(t *testing.T, hangUp bool) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepts.Add(1)
			if hangUp {
				_ = c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-f.done
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			_ = c.Close()
		}
	})
	return f
}

func (f *fakeBroker) url() string {
	return "amqp://guest:guest@" + f.ln.Addr().String() + "/"
}

// proxy relays TCP between the publisher and the test broker, and can stop
// relaying the broker's side (freeze): the publisher's messages still arrive,
// but no confirm or close comes back, as from a broker stuck in a memory alarm
// or behind a dead link.
type proxy struct {
	t      *testing.T
	target string
	ln     net.Listener
	gate   sync.RWMutex // held for writing while frozen
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, brokerURL string) (p *proxy, url string) {
	t.Helper()
	uri, err := amqp.ParseURI(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p = &proxy{t: t, target: net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port)), ln: ln}
	p.wg.Go(p.accept)
	t.Cleanup(p.stop)
	uri.Host = "127.0.0.1"
	uri.Port = ln.Addr().(*net.TCPAddr).Port
	return p, uri.String()
}

func (p *proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(server, client) })
		p.wg.Go(func() { p.relayBack(client, server) })
	}
}

func (p *proxy) relayBack(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := client.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			_ = client.Close()
			return
		}
	}
}

func (p *proxy) freeze() {
	p.gate.Lock()
	p.frozen.Store(true)
}

func (p *proxy) thaw() {
	if p.frozen.CompareAndSwap(true, false) {
		p.gate.Unlock()
	}
}

func (p *proxy) stop() {
	p.thaw()
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
