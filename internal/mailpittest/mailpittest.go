// Package mailpittest runs a real SMTP server for tests: Mailpit from
// bin/mailpit (built by `make bin/mailpit`, or PHONESHOP_TEST_MAILPIT), on
// loopback ports reserved for the test (testbin.Port), with a database of its
// own and Chaos enabled, killed when the test ends. Tests read what arrived
// through its HTTP API and make its SMTP server fail on demand. A missing binary
// fails the test; only -short skips it.
package mailpittest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	netmail "net/mail"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"phoneshop/internal/testbin"
)

// Server is a running Mailpit. Its SMTP server takes plain, unauthenticated
// SMTP: it has no certificate and no auth file.
type Server struct {
	SMTPHost string
	SMTPPort int
	APIURL   string // http://127.0.0.1:port, without a trailing slash
	// database is the file of this Mailpit's own, which its API reports: how
	// ready tells it from whatever else may answer on its ports.
	database string

	t   testing.TB
	bin string
	mu  sync.Mutex
	// cmd and exited are the running process (nil while stopped); exited
	// holds its Wait's result once it ended (put back for the next reader).
	cmd    *exec.Cmd
	exited chan error
}

// Start starts a Mailpit for t and kills it at cleanup (showing its output if
// the test failed). Its ports are the test's own (testbin.Port); a Mailpit that
// could not bind one (a listener outside the tests took it) is started again on
// new ones.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Mailpit (bin/mailpit, an SMTP server); -short skips it")
	}
	bin := testbin.Find(t, "mailpit", "PHONESHOP_TEST_MAILPIT")
	var s *Server
	err := testbin.RetryOnTakenPort(t, "mailpit", func() error {
		s = &Server{SMTPHost: "127.0.0.1", SMTPPort: testbin.Port(t), APIURL: "http://" + testbin.Addr(t),
			database: filepath.Join(t.TempDir(), "mailpit.db"), t: t, bin: bin}
		return s.start(t, bin)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts Mailpit on s's ports and waits until it answers; one that exits
// first fails the start, with ErrPortTaken when it could not bind.
func (s *Server) start(t testing.TB, bin string) error {
	t.Helper()
	cmd := exec.Command(bin,
		"--smtp", s.SMTPAddr(),
		"--listen", strings.TrimPrefix(s.APIURL, "http://"),
		"--database", s.database,
		// No reverse DNS of 127.0.0.1 and no update check: the CI machine has
		// no network.
		"--smtp-disable-rdns", "--disable-version-check",
		// Chaos: SMTP error replies on demand, through SetChaos.
		"--enable-chaos",
		// Keep every message: Mailpit deletes all but the newest 500 by
		// default, and the campaign tests count thousands.
		"--max", "0",
		"--quiet")
	var logs testbin.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("mailpit output:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for !s.ready() {
		select {
		case err := <-exited:
			exited <- err
			err = fmt.Errorf("mailpit (SMTP %s, API %s) exited before it was ready (%v):\n%s", s.SMTPAddr(), s.APIURL, err, logs.String())
			if testbin.PortTaken(logs.String()) {
				err = fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
			}
			return err
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mailpit did not answer within 30s:\n%s", logs.String())
		}
	}
	return nil
}

// Stop stops the server (SIGTERM, then waits for it to exit): its SMTP port
// refuses connections until Start, and stays the test's own (testbin.Port) so
// that nothing else takes it meanwhile. What it received stays in its database.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("mailpittest: Stop while the server is stopped")
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		err = <-s.exited
	}
	s.exited <- err // for the start's cleanup, which waits for the exit too
	s.cmd, s.exited = nil, nil
}

// Start starts the server again after Stop, on the same ports and with the same
// database (what it received before is still there), and returns once it
// answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("mailpittest: Start while the server runs")
	}
	if err := s.start(s.t, s.bin); err != nil {
		s.t.Fatalf("mailpittest: start again on the same ports: %v", err)
	}
}

// SMTPAddr is the SMTP server's host:port.
func (s *Server) SMTPAddr() string {
	return net.JoinHostPort(s.SMTPHost, strconv.Itoa(s.SMTPPort))
}

// ready reports whether both the HTTP API and the SMTP server answer, as this
// Mailpit: the API with this Mailpit's database, the SMTP port with Mailpit's
// greeting. (A Mailpit whose SMTP port was taken answers on its API for a moment
// before it exits, and whatever took the port accepts connections.)
func (s *Server) ready() bool {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(s.APIURL + "/api/v1/info")
	if err != nil {
		return false
	}
	var info struct{ Database string }
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || info.Database != s.database {
		return false
	}
	conn, err := net.DialTimeout("tcp", s.SMTPAddr(), 5*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(greeting, "220 ") && strings.Contains(greeting, "Mailpit")
}

// Message is one message Mailpit received, read from its raw form with
// net/mail.
type Message struct {
	// ID is Mailpit's id of the message (its API's, not a header).
	ID string
	// MessageID is the Message-ID header without its angle brackets.
	MessageID string
	// To are the addresses of the To header (addresses only, no names).
	To []string
	// Subject is the Subject header, its encoded words decoded.
	Subject string
	// Header is the whole header, as net/mail read it.
	Header netmail.Header
	// Raw is the message as it arrived, header and body.
	Raw []byte
}

// Messages returns the messages Mailpit received, oldest first. Mailpit
// stores a message before it answers the end of DATA, so every message a
// client saw accepted is here already.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	var list struct {
		Total    int
		Messages []struct{ ID string }
	}
	s.getJSON(t, "/api/v1/messages?limit=1000", &list)
	if len(list.Messages) != list.Total {
		t.Fatalf("mailpit listed %d of %d messages", len(list.Messages), list.Total)
	}
	var msgs []Message
	for _, m := range slices.Backward(list.Messages) { // the API lists newest first
		msgs = append(msgs, parse(t, m.ID, s.get(t, "/api/v1/message/"+m.ID+"/raw")))
	}
	return msgs
}

// parse is the Message of a raw message.
func parse(t testing.TB, id string, raw []byte) Message {
	t.Helper()
	parsed, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mailpit message %s: %v\n%s", id, err, raw)
	}
	m := Message{
		ID:        id,
		MessageID: strings.TrimSuffix(strings.TrimPrefix(parsed.Header.Get("Message-ID"), "<"), ">"),
		Header:    parsed.Header,
		Raw:       raw,
	}
	if subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject")); err == nil {
		m.Subject = subject
	} else {
		m.Subject = parsed.Header.Get("Subject")
	}
	if to, err := parsed.Header.AddressList("To"); err == nil {
		for _, a := range to {
			m.To = append(m.To, a.Address)
		}
	}
	return m
}

// Trigger is one of Mailpit's Chaos triggers: answer with ErrorCode (400 to
// 599) with Probability percent. The zero Trigger never fires.
type Trigger struct {
	ErrorCode   int
	Probability int
}

// Chaos is what the SMTP server answers wrongly, and how often.
type Chaos struct {
	Sender         Trigger // MAIL FROM
	Recipient      Trigger // RCPT TO
	Authentication Trigger // AUTH (only when auth is configured, which Start does not)
}

// SetChaos makes the SMTP server answer with c's errors from the next command
// on, until the next SetChaos or ClearChaos.
func (s *Server) SetChaos(t testing.TB, c Chaos) {
	t.Helper()
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, s.APIURL+"/api/v1/chaos", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
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

// ClearChaos makes the SMTP server answer normally again.
func (s *Server) ClearChaos(t testing.TB) {
	t.Helper()
	s.SetChaos(t, Chaos{})
}

func (s *Server) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(s.get(t, path), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (s *Server) get(t testing.TB, path string) []byte {
	t.Helper()
	resp, err := http.Get(s.APIURL + path)
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

// Count is how many messages Mailpit holds.
func (s *Server) Count(t testing.TB) int {
	t.Helper()
	var list struct{ Total int }
	s.getJSON(t, "/api/v1/messages?limit=1", &list)
	return list.Total
}

// Summary is a message as Mailpit lists it: enough to count who got what,
// without fetching every message whole.
type Summary struct {
	// ID is Mailpit's id of the message (Raw fetches it whole).
	ID string
	// MessageID is the Message-ID header without its angle brackets.
	MessageID string
	To        []string
	Subject   string
}

// Summaries lists every message, oldest first, a page of 1,000 at a time.
func (s *Server) Summaries(t testing.TB) []Summary {
	t.Helper()
	var out []Summary
	for start := 0; ; start += 1000 {
		var page struct {
			Total    int
			Messages []struct {
				ID        string
				MessageID string
				Subject   string
				To        []struct{ Address string }
			}
		}
		s.getJSON(t, fmt.Sprintf("/api/v1/messages?start=%d&limit=1000", start), &page)
		for _, m := range page.Messages {
			sum := Summary{ID: m.ID, MessageID: strings.Trim(m.MessageID, "<>"), Subject: m.Subject}
			for _, a := range m.To {
				sum.To = append(sum.To, a.Address)
			}
			out = append(out, sum)
		}
		if len(page.Messages) == 0 || start+len(page.Messages) >= page.Total {
			break
		}
	}
	slices.Reverse(out) // the API lists newest first
	return out
}

// Message fetches one message whole.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	return parse(t, id, s.get(t, "/api/v1/message/"+id+"/raw"))
}
