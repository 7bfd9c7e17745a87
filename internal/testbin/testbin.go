// Package testbin is what the tests that start real servers share: finding a
// server binary the Makefile builds into bin/, loopback ports reserved for a
// server until the test ends (Port), starting a server again on new ports when
// one was taken all the same (RetryOnTakenPort), and a buffer that collects a
// process's (or a logger's) output from several goroutines.
package testbin

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Find returns the path in env when it is set, else bin/<name> beside the nearest
// go.mod above the test's directory (the repository's root), failing the test with
// how to build it when it is missing.
func Find(t testing.TB, name, env string) string {
	t.Helper()
	if b := os.Getenv(env); b != "" {
		return b
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			bin := filepath.Join(dir, "bin", name)
			if _, err := os.Stat(bin); err != nil {
				t.Fatalf("%s is missing: build it with `make bin/%s` in %s (`make test` does), or set %s, or run with -short", bin, name, dir, env)
			}
			return bin
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Buffer collects output written from several goroutines (exec's copying ones, a
// logger's callers).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
