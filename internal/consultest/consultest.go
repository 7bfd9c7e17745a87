// Package consultest runs a real Consul agent for tests: `consul agent -dev` from
// bin/consul (built by `make bin/consul`), on free loopback ports, stopped when the
// test ends. A missing binary fails the test; only -short skips it.
package consultest

import (
	"bytes"
	"fmt"
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
}

// Start starts an agent on free ports and stops it at cleanup.
func Start(t testing.TB) *Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a Consul agent (bin/consul); -short skips it")
	}
	bin := testbin.Find(t, "consul", "PHONESHOP_TEST_CONSUL")
	a := &Agent{t: t, bin: bin, HTTP: fmt.Sprintf("127.0.0.1:%d", FreePort(t))}
	a.args = []string{"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-log-level", "warn",
		"-hcl", fmt.Sprintf(`ports { http = %s dns = -1 grpc = -1 grpc_tls = -1 serf_lan = %d serf_wan = %d server = %d }`,
			a.HTTP[len("127.0.0.1:"):], FreePort(t), FreePort(t), FreePort(t))}
	a.Restart()
	t.Cleanup(a.Stop)
	return a
}

// Stop kills the agent; a dev agent keeps nothing, so its state is lost.
func (a *Agent) Stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.cmd.Wait()
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
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start consul: %v", err)
	}
	a.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + a.HTTP + "/v1/status/leader")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.t.Fatal("consul agent did not answer within 30s")
}

// FreePort returns a loopback port nothing listens on now.
func FreePort(t testing.TB) int { return testbin.FreePort(t) }

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
