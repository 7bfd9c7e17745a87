package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"phoneshop/persistence/cache"
)

const (
	// busPingEvery is how often a quiet subscription is pinged, and busSilence
	// how long one may stay silent (no message, no pong) before it is taken for
	// lost. So a subscription lost without a word (a server paused, a network
	// cut) is noticed within busSilence+busPingEvery, under the in-process
	// layer's life (DefaultLocalSessionTTL, 2 s), and one whose connection
	// closes, at once. busSilence is a second rather than a ping's time because a
	// process whose CPU is saturated may not run its subscriber for a few hundred
	// milliseconds: a shorter one would take that for a loss and flap.
	busPingEvery = 250 * time.Millisecond
	busSilence   = time.Second
	// busAckWait bounds how long Publish waits for the other processes to say
	// they applied a message: a logout or a role change, rare enough to wait for
	// an edge whose CPU is saturated (its subscriber waits its turn to run). A
	// process that has not answered by then applies it when it runs, and serves
	// what was revoked for its short life at most (DefaultLocalSessionTTL).
	busAckWait = time.Second
	// busRetry is the pause between two attempts to subscribe.
	busRetry = 250 * time.Millisecond
	// busAckTimeout bounds the sending of one acknowledgement.
	busAckTimeout = time.Second
)

// Bus is cache.Bus on Redis pub/sub: one channel under the cache's key prefix
// ("<prefix>bus") that every process of the shop subscribes to, and one channel
// per process for the acknowledgements of its messages ("<prefix>bus:ack:<id>").
//
// Pub/sub delivers only to the subscribers of the moment and says nothing of the
// messages a lost connection missed, so the bus is Healthy only from the
// confirmation of its subscription until any sign of trouble: a read error, or
// a silence that a ping does not break. On each change it
// tells every handler to forget everything ("" key), so nothing held across a
// gap is served after it.
//
// Redis writes a published message to every subscriber before it answers the
// publisher, but a subscriber may not have read it yet; so Publish waits for
// each subscriber counted by PUBLISH to acknowledge that it ran its handlers.
// When Publish returns, a logout is seen by every edge. Announce does not wait
// (the catalog's invalidations, which may lag by a moment).
type Bus struct {
	c        *Cache
	id       string
	channel  string
	acks     string
	handlers cache.Handlers

	subscribed atomic.Bool
	seq        atomic.Uint64
	lost       bool // a subscription was lost and none confirmed since (run's goroutine only)

	mu      sync.Mutex
	waiting map[uint64]*ackWait
	ps      *goredis.PubSub // the subscription of the moment; nil: none

	ctx    context.Context
	stop   context.CancelFunc
	done   chan struct{}
	ackers sync.WaitGroup
}

// ackWait counts the acknowledgements of one published message.
type ackWait struct {
	got, want int64 // want < 0: not yet known
	done      chan struct{}
}

var _ cache.Bus = (*Bus)(nil)

// Bus returns the cache's bus, subscribing on first use; Close ends it.
func (c *Cache) Bus() *Bus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bus == nil && !c.closed.Load() {
		c.bus = startBus(c)
	}
	return c.bus
}

func startBus(c *Cache) *Bus {
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	id := hex.EncodeToString(raw)
	ctx, stop := context.WithCancel(context.Background())
	b := &Bus{c: c, id: id, channel: c.prefix + "bus", acks: c.prefix + "bus:ack:" + id,
		waiting: map[uint64]*ackWait{}, ctx: ctx, stop: stop, done: make(chan struct{})}
	go b.run()
	return b
}

// Subscribe implements cache.Bus.
func (b *Bus) Subscribe(topic string, handle func(key string)) { b.handlers.Add(topic, handle) }

// Healthy implements cache.Bus: the subscription is confirmed and answers. The
// cache's circuit breaker does not enter into it: while this process hears
// every message, what it holds is safe to serve even if its other calls to
// Redis time out (an overloaded process), and an outage shows on the
// subscription too.
func (b *Bus) Healthy() bool { return b.subscribed.Load() }

// Announce implements cache.Bus.
func (b *Bus) Announce(ctx context.Context, topic, key string) error {
	b.handlers.Deliver(topic, key)
	_, err := b.publish(ctx, topic, noAck, key)
	return err
}

// noAck is the sequence number of a message that wants no acknowledgement.
const noAck = 0

// publish sends a message to the processes subscribed and says how many were.
func (b *Bus) publish(ctx context.Context, topic string, seq uint64, key string) (int64, error) {
	payload := topic + "|" + b.id + "|" + strconv.FormatUint(seq, 10) + "|" + key
	var receivers int64
	err := b.c.do(ctx, func(ctx context.Context) error {
		var err error
		receivers, err = b.c.client.Publish(ctx, b.channel, payload).Result()
		return err
	})
	return receivers, err
}

// Publish implements cache.Bus.
func (b *Bus) Publish(ctx context.Context, topic, key string) error {
	b.handlers.Deliver(topic, key)
	seq := b.seq.Add(1)
	w := &ackWait{want: -1, done: make(chan struct{})}
	b.mu.Lock()
	b.waiting[seq] = w
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiting, seq)
		b.mu.Unlock()
	}()
	// Its own subscription acknowledges too: PUBLISH counts it.
	listening := b.subscribed.Load()
	receivers, err := b.publish(ctx, topic, seq, key)
	if err != nil {
		return err
	}
	if !listening {
		return nil // the acknowledgements would not be heard
	}
	b.mu.Lock()
	w.want = receivers
	if w.got >= w.want {
		close(w.done)
	}
	b.mu.Unlock()
	timer := time.NewTimer(busAckWait)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
		b.mu.Lock()
		got := w.got
		b.mu.Unlock()
		b.c.log.Warn("not every process acknowledged an invalidation in time: those left serve what they hold for its short life at most",
			"topic", topic, "receivers", receivers, "acknowledged", got, "waited", busAckWait)
	case <-ctx.Done():
	}
	return nil
}

// close ends the subscription and waits for the acknowledgements being sent.
func (b *Bus) close() {
	b.stop()
	b.mu.Lock()
	if b.ps != nil {
		_ = b.ps.Close() // unblocks the read in progress
	}
	b.mu.Unlock()
	<-b.done
	b.ackers.Wait()
}

func (b *Bus) run() {
	defer close(b.done)
	for b.ctx.Err() == nil {
		err := b.listen()
		if b.subscribed.Swap(false) {
			// Not healthy first, then forget: a fill that saw the bus healthy
			// either is dropped here or sees the forgetting's epoch.
			b.handlers.ForgetAll()
			if b.ctx.Err() == nil {
				b.lost = true
				b.c.log.Warn("redis subscription lost: what is held in process is not served until it is back",
					"addr", b.c.addr, "err", err)
			}
		}
		select {
		case <-b.ctx.Done():
		case <-time.After(busRetry):
		}
	}
}

// listen subscribes and delivers messages until the subscription fails. It
// returns what ended it.
func (b *Bus) listen() error {
	ps := b.c.client.Subscribe(b.ctx)
	b.mu.Lock()
	if b.ctx.Err() != nil {
		b.mu.Unlock()
		_ = ps.Close()
		return b.ctx.Err()
	}
	b.ps = ps
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.ps = nil
		b.mu.Unlock()
		_ = ps.Close()
	}()
	if err := ps.Subscribe(b.ctx, b.channel, b.acks); err != nil {
		return err
	}
	confirmed := 0
	heard := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, busPingEvery)
		if err != nil {
			if !isTimeout(err) || b.ctx.Err() != nil {
				return err
			}
			if time.Since(heard) > busSilence {
				return errors.New("redis subscription: silent for " + busSilence.String())
			}
			if confirmed == 2 {
				if err := ps.Ping(b.ctx); err != nil {
					return err
				}
			}
			continue
		}
		heard = time.Now()
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" && (m.Channel == b.channel || m.Channel == b.acks) {
				confirmed++
				if confirmed == 2 {
					// Whatever was published before this moment may have been
					// missed: forget it all, then trust what comes.
					b.handlers.ForgetAll()
					b.subscribed.Store(true)
					if b.lost {
						b.lost = false
						b.c.log.Info("redis subscription back", "addr", b.c.addr)
					}
				}
			}
		case *goredis.Message:
			b.receive(m)
		}
	}
}

// receive applies a message of another process and acknowledges it, or counts
// an acknowledgement of this one's.
func (b *Bus) receive(m *goredis.Message) {
	if m.Channel == b.acks {
		seq, err := strconv.ParseUint(m.Payload, 10, 64)
		if err != nil {
			return
		}
		b.mu.Lock()
		if w, ok := b.waiting[seq]; ok {
			w.got++
			if w.want >= 0 && w.got == w.want {
				close(w.done)
			}
		}
		b.mu.Unlock()
		return
	}
	parts := strings.SplitN(m.Payload, "|", 4)
	if len(parts) != 4 {
		b.c.log.Debug("bus message ignored: not topic|sender|seq|key", "payload", m.Payload)
		return
	}
	topic, sender, seq, key := parts[0], parts[1], parts[2], parts[3]
	if sender != b.id {
		b.handlers.Deliver(topic, key) // Publish ran them in the sender already
	}
	if seq == strconv.Itoa(noAck) {
		return
	}
	b.ackers.Add(1)
	go func() {
		defer b.ackers.Done()
		ctx, cancel := context.WithTimeout(b.ctx, busAckTimeout)
		defer cancel()
		_ = b.c.do(ctx, func(ctx context.Context) error {
			return b.c.client.Publish(ctx, b.c.prefix+"bus:ack:"+sender, seq).Err()
		})
	}()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
