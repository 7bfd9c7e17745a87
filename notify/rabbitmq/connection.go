package rabbitmq

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// What the Publisher and the Consumer share: opening a connection within a
// ctx, tearing it down when a ctx ends, the reconnection backoff, and how a
// broker and a close are named in logs and errors.

// closeTimeout bounds the polite connection.close handshake when closing.
const closeTimeout = 2 * time.Second

// dial opens an AMQP connection whose TCP dial and handshake end with ctx: the
// library's own dialer knows only a fixed timeout. name is the connection's
// name in the broker's management UI and rabbitmqctl list_connections.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	var (
		raw       net.Conn
		stopGuard func() bool
	)
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp.DialConfig(url, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The library clears the deadline once the handshake is done.
			deadline, _ := ctx.Deadline()
			if err := c.SetDeadline(deadline); err != nil {
				_ = c.Close()
				return nil, err
			}
			raw = c
			stopGuard = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
			return c, nil
		},
	})
	if stopGuard != nil && !stopGuard() {
		// ctx ended during the handshake (which then failed on the past
		// deadline) or just as it finished (which left the socket unusable).
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}
	if err != nil {
		// DialConfig returns a half-open connection on a failed handshake;
		// closing the socket ends its reader goroutine.
		if raw != nil {
			_ = raw.Close()
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	return conn, nil
}

// tearDownOnDone closes conn at once if ctx ends before stop is called. stop
// reports whether it did; it returns only once the teardown is over, so no
// goroutine outlives the caller.
func tearDownOnDone(ctx context.Context, conn *amqp.Connection) (stop func() (tornDown bool)) {
	done := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = conn.CloseDeadline(time.Now())
	})
	return func() bool {
		if stopAfter() {
			return false
		}
		<-done
		return true
	}
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func backoff(first, most time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// brokerName names the broker of url for logs: "host:port vhost /". The URL
// itself holds the password.
func brokerName(url string) string {
	uri, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)) + " vhost " + uri.Vhost
}

// closeReason says why a connection or channel closed, from what its
// NotifyClose listener gave: the library reports a loss once (with the broker's
// reason), then closes the listener; a closed listener alone means the close
// was ours.
func closeReason(what string, e *amqp.Error, ok bool) error {
	if !ok || e == nil {
		return fmt.Errorf("%s closed", what)
	}
	return fmt.Errorf("%s closed by the broker: %w", what, e)
}
