package testbin

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// holderEnv makes the test binary a port holder (see TestMain) instead of running
// the tests: it reserves that many ports, prints them, and keeps them until its
// stdin closes.
const holderEnv = "TESTBIN_HOLD_PORTS"

func TestMain(m *testing.M) {
	if n := os.Getenv(holderEnv); n != "" {
		if err := holdPorts(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdPorts reserves n ports from 8 goroutines at once, prints each, then "held",
// and releases them once stdin closes.
func holdPorts(n string) error {
	count, err := strconv.Atoi(n)
	if err != nil {
		return err
	}
	ports, releases, err := pickConcurrently(count, 8)
	if err != nil {
		return err
	}
	for _, p := range ports {
		fmt.Println(p)
	}
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString(0) // until EOF
	for _, release := range releases {
		release()
	}
	return nil
}

// pickConcurrently reserves count ports from workers goroutines at once.
func pickConcurrently(count, workers int) ([]int, []func(), error) {
	var (
		mu       sync.Mutex
		ports    []int
		releases []func()
		errs     []error
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for range count/workers + min(1, max(0, count%workers-w)) {
				port, release, err := pick()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ports, releases = append(ports, port), append(releases, release)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ports, releases, errors.Join(errs...)
}

// duplicates lists the ports that occur more than once.
func duplicates(ports []int) []int {
	seen := map[int]int{}
	var dup []int
	for _, p := range ports {
		if seen[p]++; seen[p] == 2 {
			dup = append(dup, p)
		}
	}
	return dup
}

// TestPortsAreDistinctAcrossGoroutinesAndProcesses: a second test process holds
// 300 ports while this one picks 300 more from 16 goroutines at once: all 600 are
// distinct, none is one the kernel hands out for outgoing connections, and the
// other process's are not to be had while it lives. (Picks by listening on port 0
// and closing again returned the same port twice within a few hundred.)
func TestPortsAreDistinctAcrossGoroutinesAndProcesses(t *testing.T) {
	const each = 300
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), fmt.Sprintf("%s=%d", holderEnv, each))
	holder.Stderr = os.Stderr
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})

	// Both pick at the same time: this process while the holder starts and picks.
	mine, releases, err := pickConcurrently(each, 16)
	for _, release := range releases {
		t.Cleanup(release)
	}
	if err != nil {
		t.Fatal(err)
	}
	var theirs []int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "held" {
		p, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("holder printed %q", sc.Text())
		}
		theirs = append(theirs, p)
	}
	if len(theirs) != each {
		t.Fatalf("the holder reserved %d ports, want %d (%v)", len(theirs), each, sc.Err())
	}

	if dup := duplicates(mine); len(dup) > 0 {
		t.Errorf("ports handed out twice within one process: %v", dup)
	}
	if dup := duplicates(slices.Concat(mine, theirs)); len(dup) > 0 {
		t.Errorf("ports handed out to both processes: %v", dup)
	}
	low, high, err := portRange()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Concat(mine, theirs) {
		if p < low || p >= high {
			t.Errorf("port %d outside %d-%d (below the ephemeral range)", p, low, high-1)
		}
	}
	for _, p := range theirs {
		if release, ok := reserve(p); ok {
			release()
			t.Errorf("port %d reserved here while the holder process holds it", p)
		}
	}

	// A holder that dies without releasing anything (SIGKILL) leaves its ports
	// free: the kernel dropped its locks.
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	_ = stdin.Close()
	for _, p := range theirs {
		release, ok := reserve(p)
		if !ok {
			t.Errorf("port %d still reserved after its holder was killed", p)
			continue
		}
		release()
	}
}

// TestPortIsReleasedAtCleanup: a port stays reserved until the end of the test
// that took it, and is free again after.
func TestPortIsReleasedAtCleanup(t *testing.T) {
	var port int
	t.Run("holder", func(t *testing.T) {
		port = Port(t)
		if release, ok := reserve(port); ok {
			release()
			t.Fatalf("port %d reserved a second time while its test runs", port)
		}
	})
	release, ok := reserve(port)
	if !ok {
		t.Fatalf("port %d still reserved after its test's cleanup", port)
	}
	release()
}

// TestPortSkipsAPortInUse: a port with a listener on it, TCP or UDP, is not
// reserved even though nobody holds its lock.
func TestPortSkipsAPortInUse(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			port, release, err := pick()
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			var closer interface{ Close() error }
			if network == "tcp" {
				closer, err = net.Listen("tcp", addr)
			} else {
				closer, err = net.ListenPacket("udp", addr)
			}
			release() // the lock is free, but the port is not
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			if release, ok := reserve(port); ok {
				release()
				t.Fatalf("port %d reserved while a %s socket is bound to it", port, network)
			}
		})
	}
}

func TestPortTaken(t *testing.T) {
	for _, tc := range []struct {
		output string
		want   bool
	}{
		{`[ERROR] agent: Error starting agent: error="listen tcp 127.0.0.1:17123: bind: address already in use"`, true},
		{"Warning: Could not create server TCP listening socket 127.0.0.1:6400: bind: Address already in use", true},
		{"RPC Advertise address 127.0.0.1:42793 already configured for HTTP", false}, // two equal ports: a bug, not a race
		{"dial tcp 127.0.0.1:3306: connect: connection refused", false},
	} {
		if got := PortTaken(tc.output); got != tc.want {
			t.Errorf("PortTaken(%q) = %v, want %v", tc.output, got, tc.want)
		}
	}
}

func TestRetryOnTakenPort(t *testing.T) {
	taken := fmt.Errorf("consul exited: %w", ErrPortTaken)
	t.Run("started_again_while_a_port_was_taken", func(t *testing.T) {
		calls := 0
		err := RetryOnTakenPort(t, "server", func() error {
			if calls++; calls < 3 {
				return taken
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("RetryOnTakenPort = %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("other_failures_are_not_retried", func(t *testing.T) {
		calls, failed := 0, errors.New("config error")
		if err := RetryOnTakenPort(t, "server", func() error { calls++; return failed }); err != failed || calls != 1 {
			t.Fatalf("RetryOnTakenPort = %v after %d calls, want the error after 1", err, calls)
		}
	})
	t.Run("gives_up_after_5", func(t *testing.T) {
		calls := 0
		err := RetryOnTakenPort(t, "server", func() error { calls++; return taken })
		if !errors.Is(err, ErrPortTaken) || calls != startAttempts {
			t.Fatalf("RetryOnTakenPort = %v after %d calls, want ErrPortTaken after %d", err, calls, startAttempts)
		}
	})
}
