// Package consultest runs a real Consul agent for tests: `consul agent -dev` from
// bin/consul (built by `make bin/consul`), on loopback ports reserved for the test
// (testbin.Port), stopped when the test ends. A missing binary fails the test;
// only -short skips it.
package consultest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"phoneshop/internal/testbin"
)

// Agent is a running dev agent.
type Agent struct {
	t    testing.TB
	bin  string
	HTTP string // host:port of the HTTP API
	args []string
	cmd  *exec.Cmd
	// exited is closed once cmd has exited.
	exited chan struct{}
}

// Start starts an agent on ports of the test's own (testbin.Port) and stops it at
// cleanup. An agent that could not bind one of them (a listener outside the tests
// took it) is started again on new ones.
func Start(t testing.TB) *Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Consul agent (bin/consul); -short skips it")
	}
	a := &Agent{t: t, bin: testbin.Find(t, "consul", "PHONESHOP_TEST_CONSUL")}
	t.Cleanup(a.Stop)
	err := testbin.RetryOnTakenPort(t, "consul agent", func() error {
		a.HTTP = testbin.Addr(t)
		a.args = []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-log-level", "warn",
			"-hcl", fmt.Sprintf(`ports { http = %s dns = -1 grpc = -1 grpc_tls = -1 serf_lan = %d serf_wan = %d server = %d }`,
				a.HTTP[len("127.0.0.1:"):], testbin.Port(t), testbin.Port(t), testbin.Port(t))}
		return a.start()
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Stop kills the agent; a dev agent keeps nothing, so its state is lost.
func (a *Agent) Stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	a.cmd = nil
}

// Pause freezes the agent with SIGSTOP: it keeps its connections open and answers
// nothing, like an agent stalled on a hung disk or in a frozen VM, until Resume. The
// test's cleanup resumes it before the cleanups registered earlier run, so that
// stopping what the test started cannot hang on the frozen agent.
func (a *Agent) Pause() {
	a.t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		a.t.Fatalf("pause consul: %v", err)
	}
	a.t.Cleanup(a.Resume)
}

// Resume lets a paused agent go on (SIGCONT); on a running agent it does nothing.
func (a *Agent) Resume() {
	if a.cmd == nil {
		return
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		a.t.Errorf("resume consul: %v", err)
	}
}

// Restart starts the agent again on the same ports (after Stop: with no state).
// They are still the test's (testbin.Port), so the agent binds them again.
func (a *Agent) Restart() {
	a.t.Helper()
	if err := a.start(); err != nil {
		a.t.Fatal(err)
	}
}

// start (re)starts the agent on a.args and waits until it has a leader. An agent
// that exits first fails the start, with ErrPortTaken when it could not bind.
func (a *Agent) start() error {
	a.Stop()
	var out testbin.Buffer
	cmd := exec.Command(a.bin, a.args...)
	// Its output goes to the test's as before, and is kept to tell a port taken.
	cmd.Stdout = io.MultiWriter(os.Stderr, &out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start consul: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	a.cmd, a.exited = cmd, exited
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			a.cmd = nil
			err := fmt.Errorf("consul agent (HTTP %s) exited before it answered: %s\n%s", a.HTTP, cmd.ProcessState, out.String())
			if testbin.PortTaken(out.String()) {
				err = fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
			}
			return err
		default:
		}
		resp, err := client.Get("http://" + a.HTTP + "/v1/status/leader")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consul agent did not answer on %s within 30s", a.HTTP)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogRecorder keeps what a logger wrote, for tests that wait for a log line.
type LogRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (r *LogRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// Has reports whether s was written.
func (r *LogRecorder) Has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Contains(r.buf.String(), s)
}

// Patience bounds every wait of the tests on Consul. It is generous for a loaded
// machine: what a wait catches is a state never reached (a member never registered
// or dropped, a KV change never applied, a call to a frozen agent never given up),
// and it only makes such a test fail later.
const Patience = 30 * time.Second

// Eventually waits until ok holds, failing the test after Patience.
func Eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", Patience, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
