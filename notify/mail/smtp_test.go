package mail_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"phoneshop/internal/mailpittest"
	"phoneshop/internal/testbin"
	"phoneshop/notify/mail"
)

func TestSMTPClassifiesChaosReplies(t *testing.T) {
	// always fails the command with code; never lets it through.
	always := func(code int) mailpittest.Trigger { return mailpittest.Trigger{ErrorCode: code, Probability: 100} }
	var never mailpittest.Trigger
	for _, tc := range []struct {
		name      string
		sender    mailpittest.Trigger // MAIL FROM
		recipient mailpittest.Trigger // RCPT TO
		code      int
		want      error
	}{
		{"451_to_MAIL_FROM_is_temporary", always(451), never, 451, mail.ErrTemporary},
		{"550_to_MAIL_FROM_is_permanent", always(550), never, 550, mail.ErrPermanent},
		{"451_to_RCPT_TO_is_temporary", never, always(451), 451, mail.ErrTemporary},
		{"421_to_RCPT_TO_is_temporary", never, always(421), 421, mail.ErrTemporary},
		{"550_to_RCPT_TO_is_permanent", never, always(550), 550, mail.ErrPermanent},
		{"554_to_RCPT_TO_is_permanent", never, always(554), 554, mail.ErrPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpittest.Start(t)
			s := mail.NewSMTP(smtpConfig(mp))
			t.Cleanup(func() { s.Close() })
			mp.SetChaos(t, mailpittest.Chaos{Sender: tc.sender, Recipient: tc.recipient})

			err := s.Send(context.Background(), promoMessage())
			other := mail.ErrPermanent
			if tc.want == mail.ErrPermanent {
				other = mail.ErrTemporary
			}
			if !errors.Is(err, tc.want) || errors.Is(err, other) {
				t.Fatalf("Send = %v, want %v only", err, tc.want)
			}
			var se *gomail.SendError
			if !errors.As(err, &se) || se.ErrorCode() != tc.code {
				t.Errorf("Send = %v, want a go-mail SendError with code %d", err, tc.code)
			}
			if n := len(delivered(t, mp)); n != 0 {
				t.Fatalf("%d messages delivered, want none", n)
			}

			// The failed session is not left in the pool half-done: once the server
			// answers normally again, the next Send goes through.
			mp.ClearChaos(t)
			if err := s.Send(context.Background(), promoMessage()); err != nil {
				t.Fatalf("Send after the server recovered: %v", err)
			}
			if n := len(delivered(t, mp)); n != 1 {
				t.Errorf("%d messages delivered, want 1", n)
			}
		})
	}
}

func TestSMTPConnectionFailures(t *testing.T) {
	t.Run("server_not_listening_is_temporary", func(t *testing.T) {
		// A port of the test's own: nothing listens there, and no connection,
		// this Send's own included, is given it as its local port.
		s := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: testbin.Port(t), TLSPolicy: "none", Timeout: 10 * time.Second})
		err := s.Send(context.Background(), promoMessage())
		if !errors.Is(err, mail.ErrTemporary) || errors.Is(err, mail.ErrPermanent) {
			t.Errorf("Send = %v, want ErrTemporary only", err)
		}
	})

	t.Run("timeout_of_silent_server_is_temporary", func(t *testing.T) {
		srv := startFakeSMTP(t, hangAtGreeting)
		s := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: srv.port, TLSPolicy: "none", Timeout: 200 * time.Millisecond})
		err := sendWithin(t, s, context.Background(), time.Minute)
		if !errors.Is(err, mail.ErrTemporary) || errors.Is(err, mail.ErrPermanent) {
			t.Errorf("Send = %v, want ErrTemporary only", err)
		}
	})

	// The server hangs where go-mail waits with only its own Timeout (a minute
	// here): a cancelled ctx must end the Send long before that.
	for _, tc := range []struct {
		name string
		hang fakeBehaviour
	}{
		{"cancel_while_server_is_silent_at_greeting_returns", hangAtGreeting},
		{"cancel_while_server_is_silent_after_MAIL_FROM_returns", hangAtMail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFakeSMTP(t, tc.hang)
			s := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: srv.port, TLSPolicy: "none", Timeout: time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-srv.hanging // the Send is blocked in the server's silence
				cancel()
			}()
			err := sendWithin(t, s, ctx, 30*time.Second)
			if !errors.Is(err, mail.ErrTemporary) || !errors.Is(err, context.Canceled) {
				t.Errorf("Send = %v, want ErrTemporary and context.Canceled", err)
			}
		})
	}

	t.Run("connection_lost_after_the_message_was_accepted_is_success", func(t *testing.T) {
		// 250 to the end of DATA means the server has the message; an error for
		// the RSET after it would have the caller send the mail twice.
		srv := startFakeSMTP(t, dropAfterData)
		s := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: srv.port, TLSPolicy: "none", Timeout: 10 * time.Second})
		if err := sendWithin(t, s, context.Background(), 30*time.Second); err != nil {
			t.Errorf("Send = %v, want nil", err)
		}
		if n := srv.accepted.Load(); n != 1 {
			t.Errorf("server accepted %d messages, want 1", n)
		}
	})

	t.Run("mandatory_TLS_without_STARTTLS_is_temporary_and_sends_nothing", func(t *testing.T) {
		mp := mailpittest.Start(t)
		cfg := smtpConfig(mp)
		cfg.TLSPolicy = "mandatory"
		err := mail.NewSMTP(cfg).Send(context.Background(), promoMessage())
		if !errors.Is(err, mail.ErrTemporary) || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("Send = %v, want ErrTemporary about STARTTLS", err)
		}
		if n := len(delivered(t, mp)); n != 0 {
			t.Errorf("%d messages delivered, want none", n)
		}
	})

	t.Run("unknown_TLS_policy_is_temporary", func(t *testing.T) {
		// A configuration error is the adapter's, not the message's: the message
		// must not be marked failed for good.
		s := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: 25, TLSPolicy: "sometimes"})
		err := s.Send(context.Background(), promoMessage())
		if !errors.Is(err, mail.ErrTemporary) || !strings.Contains(err.Error(), "sometimes") {
			t.Errorf("Send = %v, want ErrTemporary naming the policy", err)
		}
	})
}

func TestSMTPConnections(t *testing.T) {
	t.Run("sends_share_one_connection", func(t *testing.T) {
		mp := mailpittest.Start(t)
		proxy := startProxy(t, mp.SMTPAddr())
		s := mail.NewSMTP(proxy.config(mp))
		t.Cleanup(func() { s.Close() })
		sendNumbered(t, s, 3)
		if n := len(delivered(t, mp)); n != 3 {
			t.Errorf("%d messages delivered, want 3", n)
		}
		if n := proxy.accepted(); n != 1 {
			t.Errorf("%d connections for 3 sequential sends, want 1", n)
		}
	})

	t.Run("negative_MaxIdle_connects_per_send", func(t *testing.T) {
		mp := mailpittest.Start(t)
		proxy := startProxy(t, mp.SMTPAddr())
		cfg := proxy.config(mp)
		cfg.MaxIdle = -1
		sendNumbered(t, mail.NewSMTP(cfg), 3)
		if n := proxy.accepted(); n != 3 {
			t.Errorf("%d connections for 3 sends, want 3", n)
		}
	})

	t.Run("dropped_idle_connection_is_replaced", func(t *testing.T) {
		mp := mailpittest.Start(t)
		proxy := startProxy(t, mp.SMTPAddr())
		s := mail.NewSMTP(proxy.config(mp))
		t.Cleanup(func() { s.Close() })
		sendNumbered(t, s, 1)
		proxy.dropAll() // as a server does with a client idle too long
		sendNumbered(t, s, 1)
		if n := len(delivered(t, mp)); n != 2 {
			t.Errorf("%d messages delivered, want 2", n)
		}
		if n := proxy.accepted(); n != 2 {
			t.Errorf("%d connections, want 2 (the dropped one replaced)", n)
		}
	})

	t.Run("concurrent_sends_all_arrive", func(t *testing.T) {
		mp := mailpittest.Start(t)
		s := mail.NewSMTP(smtpConfig(mp))
		t.Cleanup(func() { s.Close() })
		const senders, each = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, senders*each)
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					m := promoMessage()
					m.MessageID = fmt.Sprintf("promo.concurrent.%d-%d@phoneshop", g, i)
					errs <- s.Send(context.Background(), m)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Send: %v", err)
			}
		}
		ids := map[string]bool{}
		for _, m := range mp.Messages(t) {
			ids[m.MessageID] = true
		}
		if len(ids) != senders*each {
			t.Errorf("%d distinct messages delivered, want %d", len(ids), senders*each)
		}
	})

	t.Run("send_after_Close_still_delivers", func(t *testing.T) {
		mp := mailpittest.Start(t)
		s := mail.NewSMTP(smtpConfig(mp))
		sendNumbered(t, s, 1)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		sendNumbered(t, s, 1)
		if n := len(delivered(t, mp)); n != 2 {
			t.Errorf("%d messages delivered, want 2", n)
		}
	})
}

func TestSMTPEnvelopeSenderIsTheFromAddress(t *testing.T) {
	mp := mailpittest.Start(t)
	if err := mail.NewSMTP(smtpConfig(mp)).Send(context.Background(), promoMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// Mailpit records MAIL FROM as Return-Path.
	if got := onlyMessage(t, delivered(t, mp)).header.Get("Return-Path"); got != "<shop@example.com>" {
		t.Errorf("Return-Path = %q, want <shop@example.com>", got)
	}
}

// sendNumbered sends n messages with distinct ids and fails the test on an error.
func sendNumbered(t *testing.T, s mail.Sender, n int) {
	t.Helper()
	for i := range n {
		m := promoMessage()
		m.MessageID = fmt.Sprintf("promo.n%d.%d@phoneshop", time.Now().UnixNano(), i)
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
}

// sendWithin runs Send and fails the test if it has not returned within limit: a
// guard against hanging, far above any normal run, not a speed check.
func sendWithin(t *testing.T, s mail.Sender, ctx context.Context, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, promoMessage()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Send did not return within %v", limit)
		return nil
	}
}

// fakeBehaviour is where a fake SMTP server stops answering.
type fakeBehaviour int

const (
	hangAtGreeting fakeBehaviour = iota // accepts the connection, says nothing
	hangAtMail                          // greets, answers EHLO and NOOP, then is silent from MAIL FROM on
	dropAfterData                       // takes one message (250 to its end), then closes the connection
)

// fakeSMTP is a scripted server for the hangs Mailpit cannot be made to do.
type fakeSMTP struct {
	port     int
	hanging  chan struct{} // closed when the server starts its silence
	accepted atomic.Int32  // messages answered 250 at the end of DATA
}

func startFakeSMTP(t *testing.T, behaviour fakeBehaviour) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fakeSMTP{port: ln.Addr().(*net.TCPAddr).Port, hanging: make(chan struct{})}
	var once sync.Once
	hang := func(conn net.Conn) {
		once.Do(func() { close(srv.hanging) })
		_, _ = io.Copy(io.Discard, conn) // until the client closes
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				// The test's end closes the listener; a client still connected then is
				// cut off so that this goroutine ends.
				stop := context.AfterFunc(t.Context(), func() { conn.Close() })
				defer stop()
				if behaviour == hangAtGreeting {
					hang(conn)
					return
				}
				fmt.Fprint(conn, "220 fake ESMTP\r\n")
				lines := bufio.NewReader(conn)
				for {
					line, err := lines.ReadString('\n')
					if err != nil {
						return
					}
					switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); {
					case verb == "EHLO", verb == "HELO", verb == "NOOP", verb == "RSET":
						fmt.Fprint(conn, "250 ok\r\n")
					case behaviour == dropAfterData && (verb == "MAIL" || verb == "RCPT"):
						fmt.Fprint(conn, "250 ok\r\n")
					case behaviour == dropAfterData && verb == "DATA":
						fmt.Fprint(conn, "354 go ahead\r\n")
						for line != ".\r\n" {
							if line, err = lines.ReadString('\n'); err != nil {
								return
							}
						}
						fmt.Fprint(conn, "250 queued\r\n")
						srv.accepted.Add(1)
						return
					case verb == "QUIT":
						fmt.Fprint(conn, "221 bye\r\n")
						return
					default:
						hang(conn)
						return
					}
				}
			})
		}
	})
	return srv
}

// proxy forwards TCP connections to an SMTP server, counting them, and can cut
// them all: what the adapter's connection reuse is seen and tested through.
type proxy struct {
	port int
	mu   sync.Mutex
	n    int
	open []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.n++
			p.open = append(p.open, client, server)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(server, client); server.Close() })
			wg.Go(func() { _, _ = io.Copy(client, server); client.Close() })
		}
	})
	return p
}

func (p *proxy) config(mp *mailpittest.Server) mail.SMTPConfig {
	cfg := smtpConfig(mp)
	cfg.Port = p.port
	return cfg
}

func (p *proxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// dropAll closes every connection through the proxy, both ends.
func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}
