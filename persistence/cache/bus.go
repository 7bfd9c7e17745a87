package cache

import (
	"context"
	"sync"
)

// Topics of the invalidations the cache layers send each other.
const (
	// TopicSession: the session of a token hash ended (key: the hash).
	TopicSession = "session"
	// TopicAccount: an account's roles or settings changed (key: its id).
	TopicAccount = "account"
	// TopicCatalog: the catalog moved to a new generation (key: empty).
	TopicCatalog = "catalog"
)

// Bus carries invalidations to every process that shares a cache, so that what
// they hold in process is dropped at once everywhere. In production it is Redis
// pub/sub (persistence/redis); without Redis it is LocalBus, in process.
//
// A handler called with an empty key must forget everything of its topic: a bus
// does so whenever it may have missed messages (its subscription was lost, or
// came back).
type Bus interface {
	// Publish runs the topic's handlers in this process, then delivers key to
	// every other subscribed process and returns once each has run its handlers,
	// or a short bound passed. An error means other processes may not hear it.
	Publish(ctx context.Context, topic, key string) error
	// Announce is Publish without waiting for the other processes: for
	// invalidations allowed to lag by a moment (the catalog's).
	Announce(ctx context.Context, topic, key string) error
	// Subscribe adds a handler for topic. Handlers run on the bus's goroutine,
	// one message at a time, and must be quick.
	Subscribe(topic string, handle func(key string))
	// Healthy reports whether this process is sure to hear every message published
	// from now on. While it is not, what is held in process must not be served:
	// a revocation could go unheard.
	Healthy() bool
}

// Handlers are the handlers of a Bus by topic, for the implementations of Bus.
type Handlers struct {
	mu     sync.RWMutex
	topics map[string][]func(string)
}

// Add adds a handler for topic.
func (h *Handlers) Add(topic string, handle func(key string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.topics == nil {
		h.topics = map[string][]func(string){}
	}
	h.topics[topic] = append(h.topics[topic], handle)
}

// Deliver runs the handlers of topic with key.
func (h *Handlers) Deliver(topic, key string) {
	h.mu.RLock()
	handlers := h.topics[topic]
	h.mu.RUnlock()
	for _, handle := range handlers {
		handle(key)
	}
}

// ForgetAll runs every handler with the empty key.
func (h *Handlers) ForgetAll() {
	h.mu.RLock()
	var all []func(string)
	for _, handlers := range h.topics {
		all = append(all, handlers...)
	}
	h.mu.RUnlock()
	for _, handle := range all {
		handle("")
	}
}

// LocalBus is the Bus of a shop with no Redis: one process, so a message reaches
// every handler before Publish returns, and it is always healthy.
type LocalBus struct{ handlers Handlers }

var _ Bus = (*LocalBus)(nil)

// NewLocalBus returns an in-process bus.
func NewLocalBus() *LocalBus { return &LocalBus{} }

// Publish implements Bus.
func (b *LocalBus) Publish(_ context.Context, topic, key string) error {
	b.handlers.Deliver(topic, key)
	return nil
}

// Announce implements Bus.
func (b *LocalBus) Announce(ctx context.Context, topic, key string) error {
	return b.Publish(ctx, topic, key)
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(topic string, handle func(key string)) { b.handlers.Add(topic, handle) }

// Healthy implements Bus.
func (b *LocalBus) Healthy() bool { return true }
