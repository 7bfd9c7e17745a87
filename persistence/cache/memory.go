package cache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxEntries bounds Memory when NewMemory is given no size.
const DefaultMaxEntries = 100_000

// ErrNotInteger is returned by Memory.Incr when the key holds something else.
var ErrNotInteger = errors.New("cache: value is not an integer")

// Memory is the in-process Cache: a least-recently-used map of at most maxEntries
// keys, each with its own expiry. It is what `phoneshop dev` and tests use.
//
// The recency list is golang-lru's simplelru under Memory's own lock, not its
// locked lru.Cache: Incr reads, adds one and writes back as one step, which
// lru.Cache's per-call lock cannot give, and a second lock around it would only
// cost every call. Nor is it golang-lru's expirable LRU: that one has a single
// TTL for the whole cache, where the port gives every Set its own (and none for
// ttl <= 0, and Incr keeps the key's), and its cleanup goroutine never ends. So
// each entry carries its expiry and is dropped when a read finds it past it, as
// Redis does lazily; until then it counts in Len and towards the bound.
type Memory struct {
	mu      sync.Mutex
	entries *simplelru.LRU[string, *memoryEntry]
	now     func() time.Time
}

// memoryEntry is held by pointer, so that overwriting a key (Set, Incr) updates
// it in place without allocating; it is only touched under Memory.mu.
type memoryEntry struct {
	value     []byte
	expiresAt time.Time // zero: never
}

// NewMemory returns an empty in-process cache of at most maxEntries keys
// (DefaultMaxEntries when maxEntries <= 0).
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	entries, err := simplelru.NewLRU[string, *memoryEntry](maxEntries, nil)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Memory{entries: entries, now: time.Now}
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key)
	if !ok {
		return nil, false, nil
	}
	return append([]byte{}, e.value...), true, nil
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var expiresAt time.Time
	if ttl > 0 {
		expiresAt = m.now().Add(ttl)
	}
	m.put(key, append([]byte{}, value...), expiresAt)
	return nil
}

// Delete implements Cache.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		m.entries.Remove(k)
	}
	return nil
}

// Incr implements Cache.
func (m *Memory) Incr(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	var expiresAt time.Time
	if e, ok := m.live(key); ok {
		var err error
		if n, err = strconv.ParseInt(string(e.value), 10, 64); err != nil {
			return 0, ErrNotInteger
		}
		expiresAt = e.expiresAt
	}
	n++
	m.put(key, strconv.AppendInt(nil, n, 10), expiresAt)
	return n, nil
}

// Len returns how many keys are held, expired ones not yet dropped included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries.Len()
}

// live returns the unexpired entry of key and marks it used; an expired one is
// dropped. m.mu is held.
func (m *Memory) live(key string) (*memoryEntry, bool) {
	e, ok := m.entries.Get(key)
	if !ok {
		return nil, false
	}
	if !e.expiresAt.IsZero() && !m.now().Before(e.expiresAt) {
		m.entries.Remove(key)
		return nil, false
	}
	return e, true
}

// put stores value under key and marks it used; a new key evicts the least
// recently used beyond the bound. m.mu is held.
func (m *Memory) put(key string, value []byte, expiresAt time.Time) {
	if e, ok := m.entries.Get(key); ok {
		e.value, e.expiresAt = value, expiresAt
		return
	}
	m.entries.Add(key, &memoryEntry{value: value, expiresAt: expiresAt})
}
