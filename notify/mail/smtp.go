package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// SMTPConfig is where and how the SMTP adapter delivers. Zero values take the
// defaults named on each field.
type SMTPConfig struct {
	Host string
	Port int // default 25
	// Username and Password turn on SMTP AUTH (the strongest mechanism the server
	// offers); with no Username the adapter does not authenticate.
	Username string
	Password string
	// TLSPolicy is "mandatory" (default: STARTTLS or no delivery),
	// "opportunistic" (STARTTLS when the server offers it) or "none".
	TLSPolicy string
	// Timeout bounds connecting and each SMTP command (default 15 s).
	Timeout time.Duration
	// HELO is the name the adapter greets with (default: the machine's host name).
	HELO string
	// MaxIdle is how many connections are kept open between sends (default 2;
	// negative: none, one connection per Send).
	MaxIdle int
	// IdleTimeout is how long an unused connection is kept (default 30 s): less
	// than servers wait before they drop an idle client (Postfix: 300 s).
	IdleTimeout time.Duration
}

// SMTP is the production Sender: it hands each message to an SMTP server with
// go-mail. A repeated MessageID is delivered again: the guard against duplicates
// is the caller's delivery record.
//
// Connections are reused: a Send takes an idle connection (checked with NOOP) or
// dials a new one, and a connection goes back to the pool only after a message was
// accepted on it. A connection found dead before MAIL FROM is replaced once, which
// is safe because nothing was sent on it. Several Sends may run at once, each on
// its own connection.
//
// Errors: a 5xx reply to MAIL FROM, RCPT TO or DATA, or an invalid message, is
// ErrPermanent. Everything else is ErrTemporary: 4xx replies, connection failures,
// timeouts, a cancelled ctx, and failures while setting up the session (greeting,
// EHLO, STARTTLS, AUTH) even with a 5xx code, because those concern the server or
// this adapter's configuration, not the message, which may go once they are fixed.
// A message the server accepted (250 to the end of DATA) is sent, whatever fails
// in the session after it.
type SMTP struct {
	client      *gomail.Client // settings only; connections are dialled per Send
	configErr   error
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
}

// smtpConn is one SMTP session and the TCP connection under it, which Send
// closes to stop a session that its ctx gave up on.
type smtpConn struct {
	session   *smtp.Client
	conn      net.Conn
	idleSince time.Time
}

// NewSMTP returns the SMTP adapter for cfg. A configuration go-mail rejects
// (unknown TLSPolicy, no Host, port out of range) makes every Send fail with
// ErrTemporary and the reason: the messages are fine, the adapter is not.
func NewSMTP(cfg SMTPConfig) *SMTP {
	s := &SMTP{maxIdle: cfg.MaxIdle, idleTimeout: cfg.IdleTimeout}
	if s.maxIdle == 0 {
		s.maxIdle = 2
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = 30 * time.Second
	}
	s.client, s.configErr = newClient(cfg)
	if s.configErr != nil {
		s.configErr = fmt.Errorf("mail: smtp config: %w", s.configErr)
	}
	return s
}

func newClient(cfg SMTPConfig) (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithDialContextFunc(dialSMTP)}
	switch cfg.TLSPolicy {
	case "", "mandatory":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("TLS policy %q: want mandatory, opportunistic or none", cfg.TLSPolicy)
	}
	if cfg.Port != 0 {
		opts = append(opts, gomail.WithPort(cfg.Port))
	}
	if cfg.Timeout > 0 {
		opts = append(opts, gomail.WithTimeout(cfg.Timeout))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return gomail.NewClient(cfg.Host, opts...)
}

// dialState carries, through go-mail's dial, the Send's ctx in and the new
// connection out: go-mail keeps the net.Conn to itself, and Send needs it to
// stop a session whose ctx is done (go-mail only watches ctx while it connects).
type dialState struct {
	sendCtx context.Context
	conn    net.Conn
	stop    func() bool // stops watching sendCtx; false if it already closed conn
}

type dialStateKey struct{}

func dialSMTP(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if st, ok := ctx.Value(dialStateKey{}).(*dialState); ok {
		st.conn = conn
		st.stop = context.AfterFunc(st.sendCtx, func() { _ = conn.Close() })
	}
	return conn, nil
}

// Send delivers m to the server in one SMTP transaction.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if ctx.Err() != nil {
		return interrupted(ctx, nil)
	}
	msg, err := toMsg(m)
	if err != nil {
		return err
	}
	if s.configErr != nil {
		return fmt.Errorf("%w: %w", ErrTemporary, s.configErr)
	}
	for {
		c, reused, err := s.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx, err)
			}
			return temporary("mail: smtp %s: connect: %w", s.client.ServerAddr(), err)
		}
		// Closing the connection is what makes a blocked read or write return when
		// ctx is done; go-mail's own deadlines only know Timeout.
		stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
		err = s.client.SendWithSMTPClient(c.session, msg)
		open := stop()
		if err == nil {
			if open {
				s.release(c)
			}
			return nil
		}
		_ = c.conn.Close()
		if msg.IsDelivered() {
			// The server took the message (250 to the end of DATA) and only the RSET
			// after it failed: reporting an error would have the caller send it again.
			return nil
		}
		if ctx.Err() != nil {
			return interrupted(ctx, err)
		}
		var se *gomail.SendError
		if !errors.As(err, &se) {
			return temporary("mail: smtp %s: %w", s.client.ServerAddr(), err)
		}
		if se.Reason == gomail.ErrConnCheck && reused {
			continue // a pooled connection the server had dropped: nothing was sent on it
		}
		if code := se.ErrorCode(); code >= 500 && code <= 599 {
			return fmt.Errorf("%w: mail: smtp %s: %w", ErrPermanent, s.client.ServerAddr(), err)
		}
		return temporary("mail: smtp %s: %w", s.client.ServerAddr(), err)
	}
}

// acquire returns an idle connection (reused) or a new one.
func (s *SMTP) acquire(ctx context.Context) (c *smtpConn, reused bool, err error) {
	if c := s.takeIdle(); c != nil {
		return c, true, nil
	}
	st := &dialState{sendCtx: ctx}
	session, err := s.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialStateKey{}, st))
	if st.stop != nil {
		st.stop() // Send watches ctx itself from here on
	}
	if err != nil {
		// go-mail leaves the connection open when the greeting, EHLO, STARTTLS
		// or AUTH fails.
		if st.conn != nil {
			_ = st.conn.Close()
		}
		return nil, false, err
	}
	return &smtpConn{session: session, conn: st.conn}, false, nil
}

// takeIdle pops the most recently used idle connection and ends those idle too long.
func (s *SMTP) takeIdle() *smtpConn {
	var stale []*smtpConn
	defer func() {
		for _, c := range stale {
			quit(c)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(c.idleSince) < s.idleTimeout {
			return c
		}
		stale = append(stale, c)
	}
	return nil
}

// release puts a connection whose last transaction succeeded back in the pool.
func (s *SMTP) release(c *smtpConn) {
	c.idleSince = time.Now()
	s.mu.Lock()
	if s.closed || len(s.idle) >= s.maxIdle {
		s.mu.Unlock()
		quit(c)
		return
	}
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

// quitTimeout bounds the goodbye to a server that no longer answers.
const quitTimeout = time.Second

// quit ends a session politely (QUIT) and closes its connection.
func quit(c *smtpConn) {
	_ = c.conn.SetDeadline(time.Now().Add(quitTimeout))
	_ = c.session.Quit()
	_ = c.conn.Close()
}

// Close ends the idle connections and keeps no more from now on; Sends after
// Close still work, each on a connection of its own.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range idle {
		quit(c)
	}
	return nil
}
