package mail_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"phoneshop/notify/mail"
)

// mailpit is a real SMTP server for one test: bin/mailpit (built by `make
// $PWD/bin/mailpit` or `make test`, or PHONESHOP_TEST_MAILPIT) on free loopback ports, with its own
// database and Chaos enabled, killed when the test ends. Tests read what arrived
// through its HTTP API.
type mailpit struct {
	smtpPort int
	api      string // http://127.0.0.1:port
}

// startMailpit starts a Mailpit for t. A missing binary fails the test; only
// -short skips it.
func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Mailpit (bin/mailpit, an SMTP server); -short skips it")
	}
	bin := findMailpit(t)
	mp := &mailpit{smtpPort: freePort(t)}
	mp.api = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin,
		"--smtp", fmt.Sprintf("127.0.0.1:%d", mp.smtpPort),
		"--listen", strings.TrimPrefix(mp.api, "http://"),
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		// No SMTP auth file and no TLS certificate: Mailpit accepts plain,
		// unauthenticated SMTP. No reverse DNS of 127.0.0.1 and no update check:
		// this machine has no network.
		"--smtp-disable-rdns", "--disable-version-check",
		// Chaos: SMTP error replies on demand, set per test through PUT /api/v1/chaos.
		"--enable-chaos",
		"--quiet")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("mailpit output:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for !mp.ready() {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("mailpit exited before it was ready (%v):\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer within 30s:\n%s", logs.String())
		}
	}
	return mp
}

// ready reports whether both the HTTP API and the SMTP port answer.
func (mp *mailpit) ready() bool {
	resp, err := http.Get(mp.api + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	conn, err := net.Dial("tcp", mp.smtpAddr())
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func (mp *mailpit) smtpAddr() string { return fmt.Sprintf("127.0.0.1:%d", mp.smtpPort) }

// config is an SMTP adapter configuration for this Mailpit: no TLS (it has no
// certificate), no auth.
func (mp *mailpit) config() mail.SMTPConfig {
	return mail.SMTPConfig{
		Host: "127.0.0.1", Port: mp.smtpPort, TLSPolicy: "none",
		Timeout: 10 * time.Second, HELO: "phoneshop.test",
	}
}

// delivered returns the raw messages Mailpit received, oldest first. Mailpit
// stores a message before it answers the end of DATA, so what Send returned for is
// here already.
func (mp *mailpit) delivered(t *testing.T) [][]byte {
	t.Helper()
	var list struct {
		Total    int
		Messages []struct{ ID string }
	}
	mp.getJSON(t, "/api/v1/messages?limit=1000", &list)
	if len(list.Messages) != list.Total {
		t.Fatalf("mailpit listed %d of %d messages", len(list.Messages), list.Total)
	}
	var raws [][]byte
	for _, m := range slices.Backward(list.Messages) { // the API lists newest first
		raws = append(raws, mp.get(t, "/api/v1/message/"+m.ID+"/raw"))
	}
	return raws
}

// chaosTrigger is one of Mailpit's Chaos triggers: answer ErrorCode with
// Probability percent.
type chaosTrigger struct {
	ErrorCode   int
	Probability int
}

// setChaos makes Mailpit's SMTP server answer sender (MAIL FROM) and recipient
// (RCPT TO) with the triggers' errors; a zero trigger answers normally.
func (mp *mailpit) setChaos(t *testing.T, sender, recipient chaosTrigger) {
	t.Helper()
	body, _ := json.Marshal(map[string]chaosTrigger{"Sender": sender, "Recipient": recipient})
	req, _ := http.NewRequest(http.MethodPut, mp.api+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT /api/v1/chaos: %v", err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/v1/chaos: %s: %s", resp.Status, got)
	}
}

func (mp *mailpit) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(mp.get(t, path), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (mp *mailpit) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(mp.api + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %s", path, resp.Status, err, body)
	}
	return body
}

// findMailpit returns PHONESHOP_TEST_MAILPIT, or bin/mailpit at the root of the
// repository (the directory above the test's that holds go.mod).
func findMailpit(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("PHONESHOP_TEST_MAILPIT"); b != "" {
		return b
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			bin := filepath.Join(dir, "bin", "mailpit")
			if _, err := os.Stat(bin); err != nil {
				// The Makefile's target is the absolute path ($(CURDIR)/bin/mailpit).
				t.Fatalf("%s is missing: build it with `make %s` in %s (`make test` does), or set PHONESHOP_TEST_MAILPIT, or run with -short", bin, bin, dir)
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

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output, written from exec's copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
