// Package redistest starts private Redis servers for the benchmark's tests, as
// make bench does for the durable peer of the Redis way.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"phoneshop/internal/testbin"
)

// startTimeout bounds how long a new server may take to answer PING.
const startTimeout = 10 * time.Second

// Durable starts a redis-server of the test's own on a loopback port reserved for
// the test (testbin.Port; on a new one if that was taken before the server bound
// it), with every write fsynced before it is answered (appendonly yes,
// appendfsync always, no snapshots, its files in a temporary directory), stops it
// when the test ends and returns its address. Without a redis-server binary the
// test fails: what it checks is part of the benchmark's report, not optional.
func Durable(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("a durable Redis needs the redis-server binary (apt-get install redis-server): %v", err)
	}
	var addr string
	err = testbin.RetryOnTakenPort(t, "durable redis-server", func() error {
		addr = testbin.Addr(t)
		return startDurable(t, bin, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startDurable starts the server on addr and waits until it answers PING; one that
// exits first fails the start, with ErrPortTaken when it could not bind.
func startDurable(t testing.TB, bin, addr string) error {
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--dir", t.TempDir(),
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	var output testbin.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			err := fmt.Errorf("redis-server on %s exited (%s): %s", addr, cmd.ProcessState, output.String())
			if testbin.PortTaken(output.String()) {
				err = fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
			}
			return err
		default:
		}
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer within %s: %v", addr, startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
