package ratelimit

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Memory is Counters in process memory: at most maxKeys counters, the least
// recently used dropped first.
type Memory struct {
	mu   sync.Mutex // Incr is a read-modify-write
	keys *lru.Cache[string, memoryCounter]
	now  func() time.Time
}

type memoryCounter struct {
	n         int64
	expiresAt time.Time
}

var _ Counters = (*Memory)(nil)

// NewMemory returns empty counters holding at most maxKeys keys.
func NewMemory(maxKeys int) *Memory {
	keys, err := lru.New[string, memoryCounter](maxKeys)
	if err != nil {
		panic(err) // only for maxKeys <= 0
	}
	return &Memory{keys: keys, now: time.Now}
}

// Incr implements Counters.
func (m *Memory) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	c, ok := m.keys.Get(key)
	if !ok || !now.Before(c.expiresAt) {
		c = memoryCounter{}
	}
	c.n++
	c.expiresAt = now.Add(ttl)
	m.keys.Add(key, c)
	return c.n, nil
}

// Get implements Counters.
func (m *Memory) Get(_ context.Context, key string) (int64, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.keys.Get(key)
	if !ok {
		return 0, 0, nil
	}
	left := c.expiresAt.Sub(m.now())
	if left <= 0 {
		m.keys.Remove(key)
		return 0, 0, nil
	}
	return c.n, left, nil
}

// Delete implements Counters.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys.Remove(key)
	return nil
}
