package cache

import (
	"container/list"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxEntries bounds Memory when NewMemory is given no size.
const DefaultMaxEntries = 100_000

// ErrNotInteger is returned by Memory.Incr when the key holds something else.
var ErrNotInteger = errors.New("cache: value is not an integer")

// Memory is the in-process Cache: a least-recently-used map of at most maxEntries
// keys, each with its own expiry. It is what `phoneshop dev` and tests use.
type Memory struct {
	mu         sync.Mutex
	maxEntries int
	entries    map[string]*list.Element
	recency    *list.List // front = most recently used
	now        func() time.Time
}

type memoryEntry struct {
	key       string
	value     []byte
	expiresAt time.Time // zero: never
}

// NewMemory returns an empty in-process cache of at most maxEntries keys
// (DefaultMaxEntries when maxEntries <= 0).
func NewMemory(maxEntries int) *Memory {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &Memory{maxEntries: maxEntries, entries: make(map[string]*list.Element), recency: list.New(), now: time.Now}
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
		if el, ok := m.entries[k]; ok {
			m.remove(el)
		}
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
	m.put(key, []byte(strconv.FormatInt(n, 10)), expiresAt)
	return n, nil
}

// Len returns how many keys are held, expired ones not yet dropped included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// live returns the unexpired entry of key and marks it used; m.mu is held.
func (m *Memory) live(key string) (*memoryEntry, bool) {
	el, ok := m.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*memoryEntry)
	if !e.expiresAt.IsZero() && !m.now().Before(e.expiresAt) {
		m.remove(el)
		return nil, false
	}
	m.recency.MoveToFront(el)
	return e, true
}

// put stores an entry and evicts the least recently used beyond the bound; m.mu is held.
func (m *Memory) put(key string, value []byte, expiresAt time.Time) {
	if el, ok := m.entries[key]; ok {
		e := el.Value.(*memoryEntry)
		e.value, e.expiresAt = value, expiresAt
		m.recency.MoveToFront(el)
		return
	}
	m.entries[key] = m.recency.PushFront(&memoryEntry{key: key, value: value, expiresAt: expiresAt})
	for len(m.entries) > m.maxEntries {
		m.remove(m.recency.Back())
	}
}

func (m *Memory) remove(el *list.Element) {
	m.recency.Remove(el)
	delete(m.entries, el.Value.(*memoryEntry).key)
}
