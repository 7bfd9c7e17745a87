package testbin

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Ports for the servers a test starts.
//
// A port found by listening on 127.0.0.1:0 and closing the listener again is not
// held by anyone: the next such pick may return it again, and until the server
// binds it any outgoing connection of any process may get it from the kernel's
// ephemeral range as its local port (and a client dialling a stopped server's port
// may even connect to itself). Port picks instead at random below the ephemeral
// range, where the kernel never hands ports out, checks that nothing listens there,
// and reserves it with an exclusive, non-blocking flock(2) on a file of that port
// under os.TempDir(), taken by every test process of the repository (of every
// worktree of it, under the same TMPDIR). The lock is held until the test's
// cleanup, and the kernel drops it when the process dies. So two tests never get
// the same port, and the port stays the test's own while it stops and restarts its
// server there; only a listener outside these tests can still take it, which
// RetryOnTakenPort deals with.

// The range Port picks from: below the ephemeral range (32768-60999 by default;
// portHigh is lowered to its start when that is lower), and below
// scripts/testservices.sh's range (20000 up to the ephemeral range), so that a
// private server it starts, which holds no lock, cannot race with these tests for a
// port, in this worktree or another. Ports under 10000 are left to the well-known
// services (MySQL, Redis, RabbitMQ, the shop's own defaults).
const (
	portLow  = 10000
	portHigh = 20000 // exclusive
)

// portPicks is how many random ports Port tries before it gives up: with
// thousands of ports free, running out means the range is used up or broken.
const portPicks = 1000

// lockDir holds one lock file per reserved port.
var lockDir = filepath.Join(os.TempDir(), "phoneshop-test-ports")

// Port reserves a loopback port for a server the test starts and returns it: no
// other test process of the repository gets it until t's cleanup, nothing listens
// on it (TCP or UDP on 127.0.0.1) when Port returns, and it is below the kernel's
// ephemeral range, so no outgoing connection takes it meanwhile. Hand it to the
// server, and keep the server on it for the whole test (restarts included). Call
// it from the test's goroutine: it fails t when no port is free.
func Port(t testing.TB) int {
	t.Helper()
	port, release, err := pick()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return port
}

// pick reserves a free port at random in the range and returns it with the
// function that releases it.
func pick() (port int, release func(), err error) {
	low, high, err := portRange()
	if err != nil {
		return 0, nil, err
	}
	if err := os.MkdirAll(lockDir, 0o777); err != nil {
		return 0, nil, fmt.Errorf("ports: %w", err)
	}
	// Every user's tests share the folder, as they share the ports (as /tmp is
	// shared); only its owner can do this, and it only needs doing once.
	_ = os.Chmod(lockDir, 0o777|os.ModeSticky)
	for range portPicks {
		port := low + rand.IntN(high-low)
		if release, ok := reserve(port); ok {
			return port, release, nil
		}
	}
	return 0, nil, fmt.Errorf("ports: no free port among %d random picks in %d-%d", portPicks, low, high-1)
}

// Addr is 127.0.0.1 and a port from Port, as host:port.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// portRange is where Port picks, [low, high): below the ephemeral range.
func portRange() (low, high int, err error) {
	high = portHigh
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if first, err := strconv.Atoi(f[0]); err == nil && first < high {
				high = first
			}
		}
	}
	if high-portLow < 1000 {
		return 0, 0, fmt.Errorf("ports: the ephemeral range (net.ipv4.ip_local_port_range) starts at %d, leaving fewer than 1000 ports from %d for the tests' servers, which need ports no outgoing connection takes", high, portLow)
	}
	return portLow, high, nil
}

// reserve takes port's lock when nobody holds it and nothing listens on the port.
// release removes the lock file and drops the lock.
func reserve(port int) (release func(), ok bool) {
	path := filepath.Join(lockDir, strconv.Itoa(port))
	// Read-only: flock needs no write access, so a file another user made serves too.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	// The holder before us removes the file before it unlocks: a lock won on a
	// file that is no longer at path is a lock on nothing (the next process makes
	// a new file there and locks that).
	var held, named syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &held) != nil || syscall.Stat(path, &named) != nil ||
		held.Dev != named.Dev || held.Ino != named.Ino {
		f.Close()
		return nil, false
	}
	release = func() {
		_ = os.Remove(path) // while locked: see above
		_ = f.Close()
	}
	if !bindable(port) {
		release()
		return nil, false
	}
	return release, true
}

// bindable reports whether a TCP and a UDP socket can bind 127.0.0.1:port now, that
// is whether no other socket listens there (or on the wildcard address). UDP too:
// Consul's Serf ports take both.
func bindable(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// ErrPortTaken is the error, wrapped, of a start that failed because the server
// could not bind a port Port gave it: a listener outside the repository's tests
// took it before the server bound it. RetryOnTakenPort starts such a server again
// on new ports.
var ErrPortTaken = errors.New("a port was taken before the server bound it")

// PortTaken reports whether a server's output (or error) says it could not bind
// an address: the wording of Go's net package and of C servers, "bind: address
// already in use" (Redis capitalises it).
func PortTaken(output string) bool {
	return strings.Contains(strings.ToLower(output), "address already in use")
}

// startAttempts bounds RetryOnTakenPort: each attempt is on newly picked ports,
// so a port taken again and again means something keeps taking the range.
const startAttempts = 5

// RetryOnTakenPort calls start, which reserves ports with Port, starts a server on
// them and waits until it serves, until it returns nil or an error that does not
// wrap ErrPortTaken, at most 5 times; it logs each retry and returns the last
// error. Only the first start of a server is retried so: a restart stays on the
// ports the test already uses, which stay reserved until its end. Call it from
// the test's goroutine (Port may fail the test).
func RetryOnTakenPort(t testing.TB, what string, start func() error) error {
	t.Helper()
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = start(); err == nil || !errors.Is(err, ErrPortTaken) {
			return err
		}
		t.Logf("%s, attempt %d of %d: %v; starting it again on new ports", what, attempt, startAttempts, err)
	}
	return fmt.Errorf("%s: %d starts on new ports each failed to bind, the last: %w", what, startAttempts, err)
}
