package rabbitmq_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"phoneshop/internal/rabbittest"
	"phoneshop/notify/outbox"
	"phoneshop/notify/rabbitmq"
)

// bindQueue declares the exchange as the publisher does, and a durable queue
// bound to it with keys (durable, so that it outlives closed connections).
func bindQueue(t *testing.T, broker, queue string, args amqp.Table, keys ...string) {
	t.Helper()
	rabbittest.WithChannel(t, broker, func(ch *amqp.Channel) {
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
