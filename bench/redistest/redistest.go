// Package redistest starts private Redis servers for the benchmark's tests, as
// make bench does for the durable peer of the Redis way.
package redistest

import (
	"context"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a new server may take to answer PING.
const startTimeout = 10 * time.Second

// Durable starts a redis-server of the test's own on a free loopback port, with
// every write fsynced before it is answered (appendonly yes, appendfsync always, no
// snapshots, its files in a temporary directory), stops it when the test ends and
// returns its address. Without a redis-server binary the test fails: what it
// checks is part of the benchmark's report, not optional.
func Durable(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("a durable Redis needs the redis-server binary (apt-get install redis-server): %v", err)
	}
	// The port is free now; redis-server takes it a moment later, and nothing else
	// on a test machine hands out ports from the ephemeral range in between.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", t.TempDir(),
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within %s: %v", addr, startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
