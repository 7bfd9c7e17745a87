package mail_test

import (
	"net"
	"testing"
	"time"

	"phoneshop/internal/mailpittest"
	"phoneshop/notify/mail"
)

// smtpConfig is an SMTP adapter configuration for mp: no TLS (it has no
// certificate), no auth.
func smtpConfig(mp *mailpittest.Server) mail.SMTPConfig {
	return mail.SMTPConfig{
		Host: mp.SMTPHost, Port: mp.SMTPPort, TLSPolicy: "none",
		Timeout: 10 * time.Second, HELO: "phoneshop.test",
	}
}

// delivered returns the raw messages mp received, oldest first.
func delivered(t *testing.T, mp *mailpittest.Server) [][]byte {
	t.Helper()
	var raws [][]byte
	for _, m := range mp.Messages(t) {
		raws = append(raws, m.Raw)
	}
	return raws
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
